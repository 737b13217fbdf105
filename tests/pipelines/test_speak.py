"""`speak` over a real tiny-random dataset: WAVs, the rows it records, selection, resume and refusals."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import duckdb
import pytest
import soundfile

from omni_caption.model import LoadOptions
from omni_caption.model.family_qwen3 import Qwen3OmniFamily
from omni_caption.model.voicing import VoiceOptions
from omni_caption.model.voicing import VoicingError
from omni_caption.pipelines.run import RunOptions, run_corpus
from omni_caption.pipelines.speak import JOURNAL_NAME, SpeakError, SpeakOptions, speak_dataset
from omni_caption.schemas.dataset_info import describe_dataset
from tests.conftest import EXAMPLES


@pytest.fixture(scope="module")
def summarised(tmp_path_factory, cache_dir, tiny_dir):
    out = tmp_path_factory.mktemp("speak") / "captions.parquet"
    run_corpus([EXAMPLES], out, RunOptions(tasks=("caption", "summary"), model="tiny-random", greedy=True,
                                           max_new_tokens=12, cache_dir=cache_dir), show_progress=False)
    return out


@pytest.fixture
def dataset(summarised, tmp_path):
    copy = tmp_path / "captions.parquet"
    shutil.copy(summarised, copy)
    return copy


@pytest.fixture
def options(tmp_path, cache_dir):
    return SpeakOptions(out_dir=tmp_path / "voices", model="tiny-random", load=LoadOptions(cache_dir=cache_dir),
                        voice=VoiceOptions(do_sample=False, max_codes=20), batch_size=4)


def rows(dataset, sql="SELECT * FROM read_parquet(?) ORDER BY source_path, segment_index"):
    con = duckdb.connect()
    cursor = con.execute(sql, [str(dataset)])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r)) for r in cursor.fetchall()]


def test_one_wav_per_recording_recorded_on_its_rows(dataset, options):
    before = rows(dataset)
    report = speak_dataset(dataset, options)
    after = rows(dataset)
    summarised = {r["source_path"] for r in before if r["status"] == "ok" and (r["summary"] or "").strip()}
    assert len(report.written) == len(summarised) > 0
    assert len(after) == len(before)
    for row in after:
        if row["source_path"] not in summarised:
            assert row["summary_audio_path"] is None
            continue
        info = soundfile.info(row["summary_audio_path"])
        assert (info.samplerate, info.channels) == (24_000, 1)
        assert row["summary_audio_duration_s"] == pytest.approx(info.frames / 24_000)
        assert row["summary_audio_source"] == "summary"
        assert "tiny-random" in row["models"]["voice"] and "voice=" in row["config_hash"]
        assert row["caption"] == next(b["caption"] for b in before if (b["source_path"], b["segment_index"]) ==
                                      (row["source_path"], row["segment_index"]))
    # Same recording, same WAV; different recordings, different WAVs.
    by_recording = {}
    for row in after:
        if row["summary_audio_path"]:
            by_recording.setdefault(row["source_path"], set()).add(row["summary_audio_path"])
    assert all(len(paths) == 1 for paths in by_recording.values())
    assert len(set.union(*by_recording.values())) == len(summarised)
    assert "tiny-random" in describe_dataset(dataset).models["voice"][0]


def test_where_selects_rows_and_each_gets_its_own_wav(dataset, options):
    where = "source_path LIKE 'field/%' AND segment_index = 0"
    expected = {(r["source_path"], r["segment_index"]) for r in rows(dataset) if r["status"] == "ok"
                and r["source_path"].startswith("field/") and r["segment_index"] == 0 and r["caption"]}
    assert len(expected) == 2
    speak_dataset(dataset, replace(options, text_column="caption", where=where))
    voiced = {(r["source_path"], r["segment_index"]) for r in rows(dataset) if r["summary_audio_path"]}
    assert voiced == expected
    assert {r["summary_audio_source"] for r in rows(dataset) if r["summary_audio_path"]} == {"caption"}
    assert len(list(options.out_dir.glob("*.wav"))) == 2


def test_streamed_wavs_match_whole_ones(dataset, options, tmp_path):
    speak_dataset(dataset, options)
    whole = sorted(options.out_dir.glob("*.wav"))
    streamed_dir = tmp_path / "streamed"
    speak_dataset(dataset, replace(options, out_dir=streamed_dir, stream=True, overwrite=True))
    for path in whole:
        a, _ = soundfile.read(path, dtype="int16")
        b, _ = soundfile.read(streamed_dir / path.name, dtype="int16")
        assert len(a) == len(b)
        assert abs(a.astype(int) - b.astype(int)).max() <= 1


def test_a_rerun_skips_what_is_voiced_and_a_later_run_keeps_it(dataset, options, cache_dir):
    first = speak_dataset(dataset, options)
    again = speak_dataset(dataset, options)
    assert again.written == [] and again.skipped == len(first.written)
    run_corpus([EXAMPLES], dataset, RunOptions(tasks=("caption",), model="tiny-random", greedy=True,
                                               max_new_tokens=12, cache_dir=cache_dir), show_progress=False)
    assert sum(1 for r in rows(dataset) if r["summary_audio_path"]) > 0
    changed = speak_dataset(dataset, replace(options, speaker="aiden"))
    assert len(changed.written) == len(first.written)  # another speaker is another voicing


def test_an_interrupted_speak_keeps_finished_wavs(dataset, options, monkeypatch):
    real = Qwen3OmniFamily.voice_texts
    calls = []

    def fail_on_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(Qwen3OmniFamily, "voice_texts", fail_on_second_batch)
    small = replace(options, batch_size=1, stream=True)
    with pytest.raises(KeyboardInterrupt):
        speak_dataset(dataset, small)
    journal = [json.loads(line) for line in (options.out_dir / JOURNAL_NAME).read_text().splitlines()]
    assert len(journal) >= 1 and not list(options.out_dir.glob("*.partial"))
    monkeypatch.setattr(Qwen3OmniFamily, "voice_texts", real)
    report = speak_dataset(dataset, small)
    assert report.skipped == len(journal)
    assert sum(1 for r in rows(dataset) if r["summary_audio_path"]) > 0


def test_refusals_are_one_line_and_touch_nothing(dataset, options, tiny, tmp_path):
    before = dataset.read_bytes()
    with pytest.raises(VoicingError, match="unknown speaker 'bob'"):
        speak_dataset(dataset, replace(options, speaker="bob"))
    with pytest.raises(SpeakError, match="every selected answer is empty"):
        speak_dataset(dataset, replace(options, text_column="answer"))
    with pytest.raises(SpeakError, match="--text-column 'audio'"):
        speak_dataset(dataset, replace(options, text_column="audio"))
    with pytest.raises(SpeakError, match="no rows match"):
        speak_dataset(dataset, replace(options, where="source_path = 'nowhere'"))
    with pytest.raises(SpeakError, match="--where"):
        speak_dataset(dataset, replace(options, where="1=1; DROP TABLE segments"))
    wav = tmp_path / "summary.wav"  # meant as the one WAV: a folder of that name held it
    with pytest.raises(SpeakError, match=f"^--out {wav} is named as a WAV, but speak writes a folder of them .*"
                                         f"give a folder, e.g. {tmp_path / 'summary'}/$"):
        speak_dataset(dataset, replace(options, out_dir=wav))
    assert not wav.exists()
    thinker_only = tmp_path / "thinker-only"
    tiny.model.save_pretrained(thinker_only)
    tiny.processor.save_pretrained(thinker_only)
    from omni_caption.model import ModelLoadError
    with pytest.raises(ModelLoadError, match="has no talker"):
        speak_dataset(dataset, replace(options, model=str(thinker_only)))
    assert dataset.read_bytes() == before


def test_qwen25_voices_through_the_same_command(dataset, options, tiny25_dir):
    where = "source_path LIKE 'field/%' AND segment_index = 0"
    report = speak_dataset(dataset, replace(options, model="tiny-random-2.5", text_column="caption", where=where,
                                            speaker="chelsie", stream=True))
    assert len(report.written) == 2 and "qwen2.5-omni" in report.model_label
    voiced = [r for r in rows(dataset) if r["summary_audio_path"]]
    assert len(voiced) == 2 and all("qwen2.5-omni" in r["models"]["voice"] for r in voiced)
    assert all(soundfile.info(r["summary_audio_path"]).samplerate == 24_000 for r in voiced)
    with pytest.raises(VoicingError, match="unknown speaker 'aiden'"):
        speak_dataset(dataset, replace(options, model="tiny-random-2.5", text_column="caption", where=where,
                                       speaker="aiden", out_dir=options.out_dir / "x"))


def test_voices_are_not_written_into_a_sharded_datasets_own_folder(dataset, options, tmp_path):
    """A later run on the dataset then refused its folder: 'holds other things than shards (voices/)'."""
    from omni_caption.pipelines.output_checks import check_output
    from omni_caption.schemas import PartStore

    sharded = tmp_path / "ds"
    sharded.mkdir()
    shutil.copy(dataset, sharded / "shard-00000.parquet")
    for inside in (sharded / "voices", sharded):
        with pytest.raises(SpeakError, match=f"--out {inside} is inside the sharded dataset {sharded}/, whose folder "
                                             "holds its shards alone .* e.g. ds-voices/"):
            speak_dataset(sharded, replace(options, out_dir=inside))
    assert sorted(p.name for p in sharded.iterdir()) == ["shard-00000.parquet"]
    check_output(PartStore(f"{sharded}/"), overwrite=False)  # the next run still takes it


def test_a_wav_recorded_after_a_journal_line_a_crash_cut_short_is_still_remembered(tmp_path):
    """The new entry was glued to the cut line, unreadable with it: that WAV would be voiced again."""
    from omni_caption.pipelines.speak import _append_journal, _read_journal

    _append_journal(tmp_path, {"wav": "a.wav", "voice_hash": "h1"})
    with open(tmp_path / JOURNAL_NAME, "a") as journal:
        journal.write('{"wav": "b.wav", "voi')  # kill -9 mid-write
    _append_journal(tmp_path, {"wav": "c.wav", "voice_hash": "h3"})
    assert sorted(_read_journal(tmp_path)) == ["a.wav", "c.wav"]


def test_rows_of_digital_silence_are_left_out_not_listed_as_empty(dataset, options):
    """A muted meeting's rows (silent:source, no text by design) each printed 'empty caption, nothing to voice'."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(dataset)
    meeting = [p.startswith("meetings/") for p in table.column("source_path").to_pylist()]
    flags = [["silent:source"] if m else f for m, f in zip(meeting, table.column("flags").to_pylist())]
    captions = [None if m else c for m, c in zip(meeting, table.column("caption").to_pylist())]
    for name, values in (("flags", flags), ("caption", captions)):
        field = table.schema.field(name)
        table = table.set_column(table.schema.get_field_index(name), field, pa.array(values, field.type))
    pq.write_table(table, dataset)
    report = speak_dataset(dataset, replace(options, text_column="caption"))
    assert report.errors == [] and report.written and not any("weekly_planning" in p.name for p in report.written)
    with pytest.raises(SpeakError, match=r"^the \d+ selected rows are digital silence \(silent:source\): nothing to "
                                         r"voice$"):
        speak_dataset(dataset, replace(options, text_column="caption", where="source_path LIKE 'meetings/%'"))


def test_an_out_dir_given_as_text_is_a_path_and_a_tilde_is_home(monkeypatch, tmp_path):
    """A program's `out_dir="voices"` failed at `.mkdir` on a str; `"~/voices"` made a folder named ~."""
    from pathlib import Path

    monkeypatch.setenv("HOME", str(tmp_path))
    assert SpeakOptions(out_dir="voices").out_dir == Path("voices")
    assert SpeakOptions(out_dir="~/voices").out_dir == tmp_path / "voices"
