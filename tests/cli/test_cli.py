"""The command line through click's CliRunner, on the real espeak-ng example recordings."""

import csv
import io
import json
import shutil
import warnings

import duckdb
import pytest
from click.testing import CliRunner

from omni_caption.cli.main import cli
from tests.conftest import EXAMPLES


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, cache_dir, tiny_dir):
    out = tmp_path_factory.mktemp("run") / "captions.parquet"
    result = CliRunner().invoke(cli, [str(EXAMPLES), "--out", str(out), "--model", "tiny-random",
                                      "--tasks", "caption,transcript,reasoning", "--max-new-tokens", "8",
                                      "--cache-dir", str(cache_dir), "--quiet"])
    return result, out


def test_bare_path_runs_main_job(demo_run):
    result, out = demo_run
    assert result.exit_code == 0, result.output
    assert out.exists() and not out.with_name(out.name + ".parts").exists()
    assert "ok                4" in result.output and "errors            1" in result.output
    assert "  ignored: 1 file of other kinds (.txt 1), not read" in result.output  # examples/README.txt
    assert "nonsense" in result.output


def test_rows_of_the_demo(demo_run):
    _, out = demo_run
    rows = duckdb.sql(f"SELECT source_path, segment_index, start_s, end_s, caption, transcript, reasoning, answer, "
                      f"status, error, models.caption AS m, prompt_version, config_hash FROM '{out}' "
                      "ORDER BY source_path, segment_index").fetchall()
    by_path = {}
    for row in rows:
        by_path.setdefault(row[0], []).append(row)
    assert sorted(by_path) == ["field/river_morning.flac", "field/voice_memo.m4a", "meetings/weekly_planning.opus",
                               "not_really_audio.mp3", "podcast_episode.mp3"]
    meeting = by_path["meetings/weekly_planning.opus"]  # 32 s: two chunks of <= 30 s
    assert [r[1] for r in meeting] == [0, 1] and meeting[0][3] == meeting[1][2] and meeting[1][3] > 31
    (bad,) = by_path["not_really_audio.mp3"]
    assert bad[8] == "error" and "FFmpeg" in bad[9]
    for row in rows:
        if row[8] == "ok":
            assert row[4] is not None and row[5] is not None and (row[6] is not None or row[7] is not None)
            assert "nonsense" in row[10] and row[11] and row[12]


def test_query_command_prints_table_and_json(demo_run):
    _, out = demo_run
    runner = CliRunner()
    table = runner.invoke(cli, ["query", str(out), "SELECT source_path, status FROM recordings ORDER BY 1"])
    assert table.exit_code == 0, table.output
    assert "not_really_audio.mp3" in table.output and "│" in table.output
    as_json = runner.invoke(cli, ["query", str(out), "SELECT count(*) AS n FROM segments", "--format", "json"])
    assert json.loads(as_json.output) == {"n": 6}
    as_csv = runner.invoke(cli, ["query", str(out), "SELECT 1 AS a", "--format", "csv"])
    assert as_csv.output.splitlines() == ["a", "1"]
    # Binary (an --embed-audio clip) as base64, as JSON sends it, not Python's b'...' repr.
    binary = runner.invoke(cli, ["query", str(out), "SELECT {'bytes': 'fLaC'::BLOB, 'path': 'a.flac'} AS audio, "
                                                    "DATE '2026-11-24' AS day", "--format", "json"])
    assert json.loads(binary.output) == {"audio": {"bytes": "ZkxhQw==", "path": "a.flac"}, "day": "2026-11-24"}
    # In CSV, lists and structs (flags, scores) as JSON text, which a CSV reader's user can parse; not Python's repr.
    nested = runner.invoke(cli, ["query", str(out), "SELECT ['repetition:caption', 'it''s'] AS flags, "
                                                    "{'bytes': 'fLaC'::BLOB, 'tokens': 3} AS audio", "--format", "csv"])
    header, row = list(csv.reader(io.StringIO(nested.output)))
    assert header == ["flags", "audio"]
    assert [json.loads(cell) for cell in row] == [["repetition:caption", "it's"], {"bytes": "ZkxhQw==", "tokens": 3}]


def test_query_refuses_writes(demo_run):
    _, out = demo_run
    result = CliRunner().invoke(cli, ["query", str(out), f"COPY segments TO '{out}'"])
    assert result.exit_code == 1 and "only SELECT" in result.output


def test_query_takes_sql_that_opens_with_a_comment_or_comes_on_stdin(demo_run, tmp_path):
    """Saved SQL opens with a `-- comment`: passed as "$(cat report.sql)", click took it for an unknown option."""
    _, out = demo_run
    saved = "-- how many rows\nSELECT count(*) AS n FROM segments"
    runner = CliRunner()
    for args, stdin in (([saved, "--format", "json"], None), (["--format=json", saved], None),
                        (["-", "--format", "json"], saved)):
        result = runner.invoke(cli, ["query", str(out), *args], input=stdin)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == {"n": 6}
    typo = runner.invoke(cli, ["query", str(out), "SELECT 1", "--fromat", "json"])
    assert typo.exit_code == 2 and "No such option '--fromat'" in typo.output and "'--format'" in typo.output


@pytest.mark.parametrize("args,message", [
    (["missing-folder", "--out", "{tmp}/x.parquet"], "input path does not exist"),
    (["s3://bucket/recordings", "--out", "{tmp}/x.parquet"], "s3://bucket/recordings: a URL"),
    ([str(EXAMPLES), "--out", "{tmp}/no/such/dir/x.parquet"], "does not exist"),
    ([str(EXAMPLES), "--out", "{tmp}/x.parquet", "--model", "not-a-model"], "unknown --model"),
    ([str(EXAMPLES), "--out", "{tmp}/x.parquet", "--tasks", "transcript", "--language", "Klingon"], "--language"),
    ([str(EXAMPLES), "--out", "{tmp}/x.parquet", "--model", "tiny-random", "--cache-dir", "/proc/no-cache"],
     "cannot build tiny-random-v2 in /proc/no-cache (the cache folder: --cache-dir, or OMNI_CAPTION_HOME): No such "
     "file or directory"),
])
def test_bad_invocations_exit_1_with_one_line(tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = CliRunner().invoke(cli, args + ["--quiet"])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_debug_shows_traceback(tmp_path):
    result = CliRunner().invoke(cli, ["missing", "--out", str(tmp_path / "x.parquet"), "--debug"])
    assert result.exit_code == 1 and result.exception is not None


def test_unknown_task_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, [str(EXAMPLES), "--out", str(tmp_path / "x.parquet"), "--tasks", "dance"])
    assert result.exit_code == 2 and "--tasks" in result.output


def test_help_lists_commands_and_options():
    result = CliRunner().invoke(cli, ["--help"])
    assert "query" in result.output and "run" in result.output
    run_help = CliRunner().invoke(cli, ["run", "--help"])
    for flag in ("--out", "--tasks", "--model", "--device", "--dtype", "--language", "--batch-size"):
        assert flag in run_help.output


@pytest.mark.parametrize("granularity,aut", [("utterance", "pause"), ("chunk", "2")])
def test_granularity_and_aut_window(tmp_path, cache_dir, tiny_dir, granularity, aut):
    out = tmp_path / "x.parquet"
    result = CliRunner().invoke(cli, [str(EXAMPLES / "meetings"), "--out", str(out), "--model", "tiny-random",
                                      "--tasks", "transcript", "--granularity", granularity, "--aut-window", aut,
                                      "--max-new-tokens", "3", "--cache-dir", str(cache_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    spans = duckdb.sql(f"SELECT start_s, end_s, speech_ratio FROM '{out}' ORDER BY start_s").fetchall()
    longest = max(e - s for s, e, _ in spans)
    if granularity == "utterance":
        assert len(spans) >= 4 and longest <= 8.0 + 1e-6
    else:
        assert len(spans) == 2 and longest <= 30.0  # the 32 s meeting, cut once in a pause
    assert all(0.0 <= r <= 1.0 for _, _, r in spans)


@pytest.mark.parametrize("flag,value,why", [("--aut-window", "12", "'12': give 1..8 (seconds) or 'pause'"),
                                            ("--device", "tpu", "'tpu': choose auto, cpu, cuda or cuda:N")])
def test_a_bad_aut_window_or_device_is_a_usage_error(tmp_path, flag, value, why):
    result = CliRunner().invoke(cli, [str(EXAMPLES), "--out", str(tmp_path / "x.parquet"), flag, value])
    assert result.exit_code == 2 and f"Error: Invalid value for '{flag}': {why}" in result.output


@pytest.mark.parametrize("decoder", ["static", "refill"])
def test_batch_size_auto_and_engine_decoders(tmp_path, cache_dir, tiny_dir, decoder):
    out = tmp_path / "x.parquet"
    result = CliRunner().invoke(cli, [str(EXAMPLES / "field"), "--out", str(out), "--model", "tiny-random",
                                      "--tasks", "transcript", "--batch-size", "auto", "--decoder", decoder,
                                      "--segment-threads", "2", "--loop-stop-tokens", "64",
                                      "--max-new-tokens", "3", "--cache-dir", str(cache_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    options = json.loads(duckdb.sql(f"SELECT value FROM parquet_kv_metadata('{out}') "
                                    "WHERE key = 'omni_caption.run_config'").fetchone()[0])["options"]
    assert options["batch_size"] == "auto" and options["decoder"] == decoder and options["segment_threads"] == 2
    assert options["loop_stop_tokens"] == 64
    assert duckdb.sql(f"SELECT count(DISTINCT source_path) FROM '{out}' WHERE status = 'ok'").fetchone()[0] == 2


def test_the_loop_stop_default_is_the_tasks():
    from omni_caption.captioner.tasks import DEFAULT_LOOP_STOP_TOKENS
    from omni_caption.cli.main import run_command

    assert next(p.default for p in run_command.params if p.name == "loop_stop_tokens") == DEFAULT_LOOP_STOP_TOKENS


@pytest.mark.parametrize("args", [["--batch-size", "0"], ["--batch-size", "many"], ["--decoder", "turbo"],
                                  ["--loop-stop-tokens", "1"], ["--loop-stop-tokens", "-3"]])
def test_bad_batch_size_or_decoder_is_a_usage_error(tmp_path, args):
    result = CliRunner().invoke(cli, [str(EXAMPLES), "--out", str(tmp_path / "x.parquet"), *args])
    assert result.exit_code == 2 and args[0] in result.output


@pytest.mark.parametrize("extra,message", [
    (["--tasks", "caption,reasoning"], "reasoning traces need a Thinking model, and Qwen2.5-Omni has none"),
    (["--aut-window", "4"], "Qwen2.5-Omni's Whisper-style audio encoder attends within fixed 2 s chunks"),
])
def test_what_qwen25_cannot_do_is_refused_in_one_line(tmp_path, cache_dir, tiny25_dir, extra, message):
    out = tmp_path / "x.parquet"
    result = CliRunner().invoke(cli, [str(EXAMPLES / "field"), "--out", str(out), "--model", "tiny-random-2.5",
                                      "--cache-dir", str(cache_dir), "--quiet", *extra])
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_qwen25_caption_and_transcript_from_the_command_line(tmp_path, cache_dir, tiny25_dir):
    out = tmp_path / "x.parquet"
    result = CliRunner().invoke(cli, [str(EXAMPLES / "field"), "--out", str(out), "--model", "tiny-random-2.5",
                                      "--tasks", "caption,transcript", "--max-new-tokens", "4",
                                      "--cache-dir", str(cache_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    models = duckdb.sql(f"SELECT DISTINCT models.caption, models.transcript FROM '{out}'").fetchall()
    assert len(models) == 1 and all("omni-caption/tiny-random-2.5@" in m and "(qwen2.5-omni, " in m and "M params)" in m
                                    for m in models[0])


def test_a_failed_summary_is_reported_as_partial_by_run_and_info(tmp_path, cache_dir, tiny_dir, monkeypatch):
    import torch

    from omni_caption.pipelines import summarise

    def no_room(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(summarise, "generate_text", no_room)
    out = tmp_path / "x.parquet"
    result = CliRunner().invoke(cli, [str(EXAMPLES / "meetings"), "--out", str(out), "--model", "tiny-random",
                                      "--tasks", "caption,summary", "--max-new-tokens", "4",
                                      "--cache-dir", str(cache_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["partial", "1"] for line in lines) and "  errors            0" in lines
    assert result.stderr.startswith("  error: weekly_planning.opus: summary failed: CUDA out of memory")
    info = CliRunner().invoke(cli, ["info", str(out)])
    assert "recordings       1 (0 ok, 1 partial, 0 error)" in info.stdout.splitlines()


def test_a_cut_file_is_a_warning_not_an_error(tmp_path, cache_dir, tiny_dir):
    from tests.conftest import make_tone

    folder = tmp_path / "in"
    folder.mkdir()
    path = make_tone(folder / "cut.flac", seconds=20.0)
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    result = CliRunner().invoke(cli, [str(folder), "--out", str(tmp_path / "x.parquet"), "--model", "tiny-random",
                                      "--max-new-tokens", "3", "--cache-dir", str(cache_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "  errors            0" in result.stdout.splitlines()
    assert result.stderr.startswith("  warning: cut.flac: the audio ends at ")


def test_dry_run_says_what_is_left_and_writes_nothing(tmp_path, cache_dir, tiny_dir, demo_run):
    _, out = demo_run  # captions, transcripts and reasoning of the examples are stored there
    before = out.stat().st_mtime_ns
    result = CliRunner().invoke(cli, [str(EXAMPLES), "--out", str(out), "--model", "tiny-random", "--cache-dir",
                                      str(cache_dir), "--tasks", "caption,summary", "--max-new-tokens", "8",
                                      "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Dry run: nothing loaded")
    assert lines[1].endswith("; 1 file of other kinds (.txt 1), not read") and "inputs  5 recordings" in lines[1]
    assert "holds work for 5 of them" in lines[2]
    assert any(line.strip().startswith("caption [tiny-random]") and "to do: 0 recordings" in line for line in lines)
    assert any(line.strip().startswith("summary [tiny-random]") and "to do: 5 recordings" in line for line in lines)
    assert "unreadable, an error row each: 1" in result.output and "not_really_audio.mp3: FFmpeg" in result.output
    assert out.stat().st_mtime_ns == before


def test_a_rerun_with_nothing_left_claims_no_speed(tmp_path, cache_dir, tiny_dir, demo_run):
    _, done = demo_run
    out = tmp_path / "captions.parquet"
    shutil.copy(done, out)
    result = CliRunner().invoke(cli, [str(EXAMPLES), "--out", str(out), "--model", "tiny-random",
                                      "--tasks", "caption,transcript,reasoning", "--max-new-tokens", "8",
                                      "--cache-dir", str(cache_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  resumed: 5 recordings were already done" in lines  # the error row too: --retry-errors redoes it
    assert any(line.startswith("  audio hours") and line.endswith("(0.000 worked on in this run)") for line in lines)
    assert "  speed             - (no audio to work on)" in lines


def test_the_offline_demo_diarizes_with_a_tiny_random_pipeline(tmp_path, cache_dir, tiny_dir):
    """`--diarize-model tiny-random`, as `--model tiny-random`: built locally in the cache folder, said to be
    nonsense, and free of pyannote's warning about one-frame speakers."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(EXAMPLES / "meetings" / "weekly_planning.opus", folder)
    out = tmp_path / "o.parquet"
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        result = CliRunner().invoke(cli, [str(folder), "--out", str(out), "--model", "tiny-random", "--tasks",
                                          "caption", "--max-new-tokens", "2", "--diarize", "--diarize-model",
                                          "tiny-random", "--cache-dir", str(cache_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    assert any(p.name.startswith("tiny-diarization-") for p in cache_dir.iterdir())
    assert "speakers, ...) is nonsense" in result.output
    assert not [w for w in shown if "degrees of freedom" in str(w.message)]
    speakers = duckdb.sql(f"SELECT count(speaker), count(*) FROM '{out}'").fetchone()
    assert 0 < speakers[0] <= speakers[1]


def test_ctrl_c_says_where_the_work_is_and_exits_130(tmp_path, monkeypatch):
    import omni_caption.pipelines

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(omni_caption.pipelines, "run_corpus", interrupted)  # the command imports it when it runs
    result = CliRunner().invoke(cli, [str(EXAMPLES), "--out", str(tmp_path / "o") + "/", "--model", "tiny-random"])
    assert result.exit_code == 130 and "Traceback" not in result.output and "Aborted!" not in result.output
    assert f"Error: stopped by Ctrl-C; the committed work stays in {tmp_path / 'o'}.parts/ and the same command " \
           f"resumes it" in result.output
    import omni_caption.pipelines.run_preview as run_preview

    monkeypatch.setattr(run_preview, "preview_run", interrupted)
    result = CliRunner().invoke(cli, [str(EXAMPLES), "--out", str(tmp_path / "o.parquet"), "--dry-run"])
    assert result.exit_code == 130 and result.output.strip() == "Error: stopped by Ctrl-C"  # a dry run wrote nothing


def test_an_error_mid_run_prints_its_line_below_the_progress_bar(tmp_path, cache_dir, tiny_dir, monkeypatch):
    from omni_caption.pipelines import stages

    def prepare(omni, audios, prompt):
        raise TypeError("a bug")

    monkeypatch.setattr(stages, "prepare_rows", prepare)
    result = CliRunner().invoke(cli, [str(EXAMPLES / "meetings"), "--out", str(tmp_path / "o.parquet"),
                                      "--model", "tiny-random", "--cache-dir", str(cache_dir)])
    # Not a terminal: progress comes as whole lines, no carriage returns to garble a job's log.
    assert result.exit_code == 1 and "caption [tiny-random]: 0/1 recording, 0% of the run" in result.stderr
    assert "\r" not in result.stderr
    # The progress is closed first: the error is the last line, on a line of its own, and nothing after it.
    assert result.stderr.split("\n")[-2:] == ["Error: a bug", ""]


def test_files_from_a_list_on_stdin_and_export_finds_them(tmp_path, cache_dir, tiny_dir, monkeypatch):
    import lhotse

    shutil.copytree(EXAMPLES, tmp_path / "archive")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "picked.parquet"
    # As Windows Notepad saves it: a byte-order mark, CRLF line ends.
    stdin = ("\ufeff# two recordings and a stale line\r\narchive/meetings/weekly_planning.opus\r\n"
             "archive/gone.wav\r\narchive/podcast_episode.mp3\r\n")
    result = CliRunner().invoke(cli, ["--files-from", "-", "--out", str(out), "--model", "tiny-random",
                                      "--cache-dir", str(cache_dir), "--max-new-tokens", "3", "--quiet"], input=stdin)
    assert result.exit_code == 0, result.output
    rows = duckdb.sql(f"SELECT source_path, status, error FROM '{out}' GROUP BY ALL ORDER BY 1").fetchall()
    assert rows == [("archive/gone.wav", "error", "cannot read file: No such file or directory"),
                    ("archive/meetings/weekly_planning.opus", "ok", None),
                    ("archive/podcast_episode.mp3", "ok", None)]
    exported = CliRunner().invoke(cli, ["export", str(out), "--format", "lhotse", "--out", str(tmp_path / "m")])
    assert exported.exit_code == 0, exported.output
    assert len(lhotse.load_manifest(tmp_path / "m" / "recordings.jsonl.gz")) == 2


def test_no_paths_and_no_list_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--out", str(tmp_path / "x.parquet")])
    assert result.exit_code == 2 and "give the recordings: folders or files as PATHS" in result.output


def test_a_run_over_another_folder_says_what_it_keeps_and_prune_drops_it(tmp_path, cache_dir, tiny_dir):
    out = tmp_path / "o.parquet"
    args = ["--out", str(out), "--model", "tiny-random", "--cache-dir", str(cache_dir), "--max-new-tokens", "3",
            "--quiet"]
    assert CliRunner().invoke(cli, [str(EXAMPLES / "meetings")] + args).exit_code == 0
    preview = CliRunner().invoke(cli, [str(EXAMPLES / "field")] + args + ["--dry-run"])
    assert "and 1 recording of earlier runs that it keeps (--prune drops them)" in preview.output
    second = CliRunner().invoke(cli, [str(EXAMPLES / "field")] + args)
    assert "  kept: 1 recording of earlier runs, not among these inputs, as they were" in second.output
    pruned = CliRunner().invoke(cli, [str(EXAMPLES / "field")] + args + ["--prune"])
    assert pruned.exit_code == 0 and "kept:" not in pruned.output
    paths = {p for (p,) in duckdb.sql(f"SELECT DISTINCT source_path FROM '{out}'").fetchall()}
    assert "weekly_planning.opus" not in paths and len(paths) == 2


def test_a_folder_of_bad_files_lists_twenty_errors_and_says_how_to_see_the_rest(tmp_path, cache_dir, tiny_dir):
    """Every rerun over an archive with thousands of corrupt files would print a line for each."""
    (tmp_path / "in").mkdir()
    for i in range(23):
        (tmp_path / "in" / f"bad{i:02d}.mp3").write_text("not audio")
    out = tmp_path / "o.parquet"
    args = [str(tmp_path / "in"), "--out", str(out), "--model", "tiny-random", "--cache-dir", str(cache_dir), "-q"]
    preview = CliRunner().invoke(cli, args + ["--dry-run"])
    assert preview.exit_code == 0 and "unreadable, an error row each: 23" in preview.stdout
    assert "    bad19.mp3: " in preview.stdout and "bad20.mp3" not in preview.stdout
    assert preview.stdout.splitlines()[-1] == "    ... and 3 more"
    result = CliRunner().invoke(cli, args)
    errors = [line for line in result.stderr.splitlines() if line.startswith("  error: ")]
    assert result.exit_code == 0 and len(errors) == 20 and errors[-1].startswith("  error: bad19.mp3: ")
    assert result.stderr.splitlines()[-1] == (f"  ... and 3 more errors; `omni-caption info {out} --max-errors 23` "
                                              "lists them all")
    listed = CliRunner().invoke(cli, ["info", str(out), "--max-errors", "23"])
    assert sum(line.strip().startswith("bad") for line in listed.stdout.splitlines()) == 23
