"""Resume, kill -9, SIGTERM, locking and a full disk, on tiny-random and real example recordings."""

import errno
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace

import duckdb
import pytest

from omni_caption.pipelines import run_corpus
from omni_caption.pipelines.output_lock import OutputLocked
from omni_caption.schemas import PartStore
from tests.conftest import EXAMPLES, make_tone
from tests.pipelines.run_helpers import rows_of
from tests.pipelines.run_helpers import tiny_run_options as options


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(EXAMPLES, folder)
    return folder


def test_rerun_skips_finished_work_and_gives_the_same_file(corpus, tmp_path, cache_dir, tiny_dir):
    out = tmp_path / "out.parquet"
    first = run_corpus([corpus], out, options(cache_dir), show_progress=False)
    before = rows_of(out)
    second = run_corpus([corpus], out, options(cache_dir), show_progress=False)
    assert first.resumed == 0 and second.resumed == first.recordings == 5
    assert rows_of(out) == before
    # The speed is of the audio worked on: a rerun with nothing to do claims none, not the whole corpus's.
    assert first.run_audio_s == first.audio_s > 0 and first.realtime_factor > 0
    assert second.audio_s == first.audio_s and second.run_audio_s == 0 and second.realtime_factor == 0


@pytest.mark.parametrize("name", ["out.parquet", "shards/"])
def test_a_rerun_with_nothing_to_do_leaves_the_output_untouched(corpus, tmp_path, cache_dir, tiny_dir, name):
    """It rewrote the whole dataset (minutes at a million rows, all of an --embed-audio corpus's audio), and a
    sync of the archive (rsync, a Hub upload) saw every file change after each cron rerun."""
    out = tmp_path / name
    first = run_corpus([corpus], out, options(cache_dir), show_progress=False)
    files = sorted(PartStore(out).final_paths())
    stamps = [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files]
    second = run_corpus([corpus], out, options(cache_dir), show_progress=False)
    assert [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files] == stamps
    assert sorted(PartStore(out).final_paths()) == files
    counts = ("recordings", "ok", "partial", "errors", "segments", "flagged_segments", "audio_s", "error_lines",
              "warning_lines")
    assert {c: getattr(second, c) for c in counts} == {c: getattr(first, c) for c in counts}
    assert second.resumed == 5 and second.run_audio_s == 0


def test_a_rerun_that_moves_a_file_or_changes_a_setting_rewrites_the_output(corpus, tmp_path, cache_dir, tiny_dir):
    import json

    import pyarrow.parquet as pq

    out = tmp_path / "out.parquet"
    run_corpus([corpus], out, options(cache_dir, segment_threads=1), show_progress=False)
    shutil.move(corpus / "podcast_episode.mp3", corpus / "renamed.mp3")  # same bytes: not redone, but renamed
    moved = run_corpus([corpus], out, options(cache_dir, segment_threads=1), show_progress=False)
    assert moved.resumed == 5 and moved.run_audio_s == 0
    assert "renamed.mp3" in {r["source_path"] for r in rows_of(out)}
    assert "podcast_episode.mp3" not in {r["source_path"] for r in rows_of(out)}
    before = rows_of(out)
    run_corpus([corpus], out, options(cache_dir, segment_threads=2), show_progress=False)  # no result changes
    run_config = json.loads(pq.read_schema(out).metadata[b"omni_caption.run_config"])
    assert run_config["options"]["segment_threads"] == 2 and rows_of(out) == before


def test_moved_file_is_not_redone_changed_file_is(corpus, tmp_path, cache_dir, tiny_dir):
    out = tmp_path / "out.parquet"
    run_corpus([corpus], out, options(cache_dir), show_progress=False)
    (corpus / "archive").mkdir()
    shutil.move(corpus / "podcast_episode.mp3", corpus / "archive" / "renamed.mp3")
    make_tone(corpus / "field" / "river_morning.flac", seconds=3.0)  # same name, new bytes
    summary = run_corpus([corpus], out, options(cache_dir), show_progress=False)
    assert summary.resumed == 4  # all but river_morning, whose bytes changed
    assert summary.run_audio_s == pytest.approx(3.0, abs=0.05) and summary.audio_s > 10
    paths = {r["source_path"] for r in rows_of(out)}
    assert "archive/renamed.mp3" in paths and "podcast_episode.mp3" not in paths


def test_changed_task_option_redoes_that_task(corpus, tmp_path, cache_dir, tiny_dir):
    out = tmp_path / "out.parquet"
    run_corpus([corpus], out, options(cache_dir), show_progress=False)
    summary = run_corpus([corpus], out, options(cache_dir, max_new_tokens=3), show_progress=False)
    assert summary.resumed == 0
    tokens = duckdb.sql(f"SELECT max(scores.caption_tokens) FROM '{out}'").fetchone()[0]
    assert tokens <= 3


def test_adding_a_task_keeps_the_earlier_one(corpus, tmp_path, cache_dir, tiny_dir):
    out = tmp_path / "out.parquet"
    run_corpus([corpus], out, options(cache_dir), show_progress=False)
    run_corpus([corpus], out, options(cache_dir, tasks=("transcript",)), show_progress=False)
    rows = [r for r in rows_of(out) if r["status"] == "ok"]
    assert rows and all(r["caption"] is not None and r["transcript"] is not None for r in rows)


def test_overwrite_starts_fresh(corpus, tmp_path, cache_dir, tiny_dir):
    out = tmp_path / "out.parquet"
    run_corpus([corpus], out, options(cache_dir), show_progress=False)
    assert run_corpus([corpus], out, options(cache_dir, overwrite=True), show_progress=False).resumed == 0


def test_kill_9_mid_run_then_rerun_equals_uninterrupted(tmp_path, cache_dir, tiny_dir):
    corpus = tmp_path / "in"
    for i in range(12):
        shutil.copytree(EXAMPLES, corpus / f"batch{i:02d}", ignore=shutil.ignore_patterns("*.txt"))
    args = [str(corpus), "--model", "tiny-random", "--greedy", "--max-new-tokens", "24", "--commit-every", "2",
            "--cache-dir", str(cache_dir), "--quiet"]
    reference = tmp_path / "reference.parquet"
    subprocess.run([sys.executable, "-m", "omni_caption", *args, "--out", str(reference)], check=True)

    out = tmp_path / "killed.parquet"
    store = PartStore(out)
    proc = subprocess.Popen([sys.executable, "-m", "omni_caption", *args, "--out", str(out)])
    deadline = time.monotonic() + 120
    while len(store.part_paths()) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists(), "the run finished before it was killed: make the corpus bigger"
    committed = len(store.part_paths())
    assert committed >= 3
    assert (tmp_path / "killed.parquet.lock").exists()  # left behind by the dead process

    rerun = subprocess.run([sys.executable, "-m", "omni_caption", *args, "--out", str(out)],
                           capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed:" in rerun.stdout
    assert rows_of(out) == rows_of(reference)
    assert not (tmp_path / "killed.parquet.lock").exists()


def test_sigterm_stops_like_ctrl_c_releasing_the_lock_and_a_rerun_resumes(tmp_path, cache_dir, tiny_dir):
    """SLURM sends SIGTERM before a preemption; a requeued job on another host must find no lock left.
    (Ctrl-C's message and exit status: tests/cli/test_cli.py.)"""
    stop, code, said = signal.SIGTERM, 143, "stopped by SIGTERM"
    corpus = tmp_path / "in"
    for i in range(6):
        shutil.copytree(EXAMPLES, corpus / f"batch{i:02d}", ignore=shutil.ignore_patterns("*.txt"))
    out = tmp_path / "o.parquet"
    args = [sys.executable, "-m", "omni_caption", str(corpus), "--out", str(out), "--model", "tiny-random",
            "--max-new-tokens", "24", "--commit-every", "2", "--cache-dir", str(cache_dir), "--quiet"]
    store = PartStore(out)
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not store.part_paths() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(stop)
    _, stderr = proc.communicate(timeout=60)
    assert not out.exists(), "the run finished before the signal: make the corpus bigger"
    assert proc.returncode == code and f"{said}; the committed work stays in {out}.parts/" in stderr
    assert "Traceback" not in stderr and "Aborted!" not in stderr
    assert not (tmp_path / "o.parquet.lock").exists() and store.part_paths()
    rerun = subprocess.run(args, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed:" in rerun.stdout and out.exists()


def test_second_writer_is_refused_and_a_killed_holders_lock_taken_over(tmp_path, corpus, cache_dir, tiny_dir):
    out = tmp_path / "out.parquet"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from omni_caption.pipelines.output_lock import OutputLock; "
         f"OutputLock({str(out)!r}).acquire(); print('locked', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputLocked, match=f"pid {holder.pid}"):
            run_corpus([corpus], out, options(cache_dir), show_progress=False)
    finally:
        holder.send_signal(signal.SIGKILL)  # no release: the lock file stays, naming a dead pid
        holder.wait()
    lock = out.with_name("out.parquet.lock")
    assert str(holder.pid) in lock.read_text()
    assert run_corpus([corpus], out, options(cache_dir), show_progress=False).ok == 4
    assert not lock.exists()


def test_disk_full_keeps_committed_parts_and_rerun_finishes(tmp_path, corpus, cache_dir, tiny_dir, monkeypatch):
    out = tmp_path / "out.parquet"
    real_write = PartStore.write_part
    calls = []

    def flaky(self, table, manifest=None):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, table, manifest)

    monkeypatch.setattr(PartStore, "write_part", flaky)
    with pytest.raises(OSError, match="No space"):
        run_corpus([corpus], out, options(cache_dir, group_recordings=2), show_progress=False)
    store = PartStore(out)
    assert len(store.part_paths()) == 1 and len(store.existing_rows()) > 0  # the committed part is readable
    monkeypatch.setattr(PartStore, "write_part", real_write)
    summary = run_corpus([corpus], out, options(cache_dir, group_recordings=2), show_progress=False)
    assert summary.resumed == 2 and summary.ok == 4


def test_two_inputs_with_the_same_relative_path_are_both_captioned(tmp_path, cache_dir, tiny_dir):
    """day1/mic.wav and day2/mic.wav, given as two inputs, were both 'mic.wav': the second was lost."""
    for day, seconds in (("day1", 4.0), ("day2", 7.0)):
        (tmp_path / day).mkdir()
        make_tone(tmp_path / day / "mic.wav", seconds=seconds)
    out = tmp_path / "o.parquet"
    summary = run_corpus([tmp_path / "day1", tmp_path / "day2"], out, options(cache_dir), show_progress=False)
    assert (summary.recordings, summary.ok) == (2, 2)
    rows = duckdb.sql(f"SELECT source_path, round(max(recording_duration_s)) FROM '{out}' GROUP BY 1 ORDER BY 1")
    assert rows.fetchall() == [("day1/mic.wav", 4.0), ("day2/mic.wav", 7.0)]


def test_a_run_over_another_folder_keeps_what_earlier_runs_captioned(tmp_path, cache_dir, tiny_dir):
    """batch1/ then batch2/ into one output: batch1's recordings used to vanish from it."""
    for batch, name, seconds in (("batch1", "one.wav", 4.0), ("batch2", "two.wav", 6.0)):
        (tmp_path / batch).mkdir()
        make_tone(tmp_path / batch / name, seconds=seconds, freq=int(200 * seconds))
    out = tmp_path / "o.parquet"

    def recordings():
        return duckdb.sql(f"SELECT source_path, any_value(caption IS NOT NULL) FROM '{out}' GROUP BY 1 ORDER BY 1"
                          ).fetchall()

    run_corpus([tmp_path / "batch1"], out, options(cache_dir), show_progress=False)
    # Another token cap: batch2 is captioned with it, batch1 stays as its own run left it.
    second = run_corpus([tmp_path / "batch2"], out, options(cache_dir, max_new_tokens=4), show_progress=False)
    assert (second.recordings, second.ok, second.kept, second.segments) == (1, 1, 1, 1)
    assert recordings() == [("one.wav", True), ("two.wav", True)]
    # The kept recording moved into batch2 (same bytes, a new name): it is the same recording, under one path.
    (tmp_path / "batch1" / "one.wav").rename(tmp_path / "batch2" / "one_moved.wav")
    third = run_corpus([tmp_path / "batch2"], out, options(cache_dir, max_new_tokens=4), show_progress=False)
    assert (third.recordings, third.kept) == (2, 0)
    assert recordings() == [("one_moved.wav", True), ("two.wav", True)]
    pruned = run_corpus([tmp_path / "batch2"], out, options(cache_dir, max_new_tokens=4, prune=True),
                        show_progress=False)
    assert pruned.kept == 0 and recordings() == [("one_moved.wav", True), ("two.wav", True)]
    make_tone(tmp_path / "batch2" / "two.wav", seconds=5.0, freq=900)  # replaced in place: new content
    replaced = run_corpus([tmp_path / "batch2"], out, options(cache_dir, max_new_tokens=4), show_progress=False)
    assert replaced.kept == 0 and len(replaced.warning_lines) == 1
    assert replaced.warning_lines[0].startswith("two.wav: its content changed since an earlier run")
    assert duckdb.sql(f"SELECT round(max(recording_duration_s)) FROM '{out}' WHERE source_path = 'two.wav'"
                      ).fetchone() == (5.0,)
    (tmp_path / "batch2" / "two.wav").unlink()
    dropped = run_corpus([tmp_path / "batch2"], out, options(cache_dir, max_new_tokens=4, prune=True),
                         show_progress=False)
    assert dropped.recordings == 1 and recordings() == [("one_moved.wav", True)]


def clips_and_commits(tmp_path, monkeypatch, count: int, seconds: float):
    """A folder of `count` tones of `seconds`, and the list each committed part's recording count goes to."""
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(count):
        make_tone(folder / f"c{i:02d}.flac", seconds=seconds, freq=300 + 20 * i)
    committed = []
    real_write_part = PartStore.write_part
    monkeypatch.setattr(PartStore, "write_part", lambda self, table, manifest=None: (
        committed.append(len(manifest["recordings"])), real_write_part(self, table, manifest))[1])
    return folder, committed


def test_short_clips_share_a_group_unless_commit_every_says_otherwise(tmp_path, cache_dir, tiny_dir, monkeypatch):
    """A batch holds one group's segments: 20 clips of 2 s by sixteens would be batches of 16 and 4."""
    folder, committed = clips_and_commits(tmp_path, monkeypatch, count=20, seconds=2.0)
    run_corpus([folder], tmp_path / "auto.parquet", options(cache_dir), show_progress=False)
    assert committed == [20]
    committed.clear()
    run_corpus([folder], tmp_path / "fixed.parquet", options(cache_dir, group_recordings=8), show_progress=False)
    assert committed == [8, 8, 4]


def test_changing_one_task_of_a_stage_redoes_only_that_task(corpus, tmp_path, cache_dir, tiny_dir, monkeypatch):
    from omni_caption.pipelines import stages as stages_module

    out = tmp_path / "out.parquet"
    both = options(cache_dir, tasks=("caption", "transcript"))  # tiny-random: one model, one stage for both
    run_corpus([corpus], out, both, show_progress=False)
    captions_before = {(r["source_path"], r["segment_index"]): r["caption"] for r in rows_of(out)}
    called = []
    real = stages_module.run_guarded_task
    monkeypatch.setattr(stages_module, "run_guarded_task",
                        lambda generate, config, contexts: called.append(config.name) or real(generate, config,
                                                                                              contexts))
    run_corpus([corpus], out, replace(both, language="English"), show_progress=False)  # transcript changes only
    assert called and set(called) == {"transcript"}
    rows = rows_of(out)
    assert {(r["source_path"], r["segment_index"]): r["caption"] for r in rows} == captions_before
    assert all(r["language"] == "English" for r in rows if r["status"] == "ok")


def test_task_options_only_touch_their_own_task_hash(cache_dir, tiny_dir):
    from omni_caption.pipelines.run import task_configs

    base = {c.name: c.config_hash() for c in task_configs(options(cache_dir, tasks=("caption", "transcript",
                                                                                     "reasoning")))}
    changed = {c.name: c.config_hash() for c in task_configs(options(
        cache_dir, tasks=("caption", "transcript", "reasoning"), language="German", question="Who laughs?"))}
    assert base["caption"] == changed["caption"]
    assert base["transcript"] != changed["transcript"] and base["reasoning"] != changed["reasoning"]


def test_groups_are_sized_by_the_slots_that_decode_at_once(tmp_path, cache_dir, tiny_dir, monkeypatch):
    """Four batches of segments per group: one slot and 10-s chunks make 40 s groups, 8 clips of 5 s (the hour
    and the sixteen recordings a group otherwise holds at least are lowered here so that a slot counts)."""
    from omni_caption.pipelines import grouping

    monkeypatch.setattr(grouping, "GROUP_AUDIO_S", 1.0)
    monkeypatch.setattr(grouping, "MIN_GROUP_RECORDINGS", 1)
    folder, committed = clips_and_commits(tmp_path, monkeypatch, count=12, seconds=5.0)
    run_corpus([folder], tmp_path / "out.parquet", options(cache_dir, batch_size=1, max_chunk_s=10.0),
               show_progress=False)
    assert committed == [8, 4]


def test_a_recording_that_left_no_rows_is_named_not_lost_unseen(corpus, tmp_path, cache_dir, tiny_dir, monkeypatch):
    """A bug that yields no segments (the utterance granularity had one) must show in the summary."""
    import omni_caption.pipelines.segmenter as segmenter

    monkeypatch.setattr(segmenter, "segments_for", lambda *args, **kwargs: [])
    summary = run_corpus([corpus], tmp_path / "out.parquet", options(cache_dir), show_progress=False)
    vanished = sorted(line.split(":")[0] for line in summary.warning_lines if "no rows came out of it" in line)
    assert vanished == ["field/river_morning.flac", "field/voice_memo.m4a", "meetings/weekly_planning.opus",
                        "podcast_episode.mp3"]
    assert summary.errors == 1 and summary.ok == 0  # not_really_audio.mp3 has its error row


def test_a_damaged_part_is_set_aside_and_its_work_done_again(tmp_path, cache_dir, tiny_dir):
    from omni_caption.pipelines.run_preview import preview_run
    from omni_caption.schemas import rows_to_table

    folder = tmp_path / "in"
    shutil.copytree(EXAMPLES / "field", folder)
    out = tmp_path / "o.parquet"
    first = run_corpus([folder], out, options(cache_dir), show_progress=False)
    store = PartStore(out)
    # A stopped run's part, damaged since: the captions of every recording, redone as a transcript run.
    part = store.write_part(rows_to_table([replace(r, config_hash="caption=0123456789abcdef", caption="x")
                                           for r in store.existing_rows()]))
    part.write_bytes(part.read_bytes()[:64])
    preview = preview_run([folder], out, options(cache_dir, tasks=("caption", "transcript")))
    assert preview.damaged == [f"{part} is not a whole Parquet file (cut short: it has no footer): the run sets it "
                               "aside and does its work again"] and part.exists()
    summary = run_corpus([folder], out, options(cache_dir, tasks=("caption", "transcript")), show_progress=False)
    assert (summary.ok, summary.errors) == (first.ok, first.errors) == (2, 0)
    assert [line for line in summary.warning_lines if "set aside" in line] == [
        f"{part} is not a whole Parquet file (cut short: it has no footer): set aside in {out}.damaged/, and the "
        "work it held is done again"]
    assert (tmp_path / "o.parquet.damaged" / part.name).exists()
    assert duckdb.sql(f"SELECT count(*), count(caption), count(transcript) FROM '{out}'").fetchone()[1:] == (2, 2)
