"""query --format parquet, search, info and export through click's CliRunner, on a small real dataset."""

import csv
import io
import json
import os
import re
from dataclasses import replace

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from omni_caption.cli.main import cli
from omni_caption.schemas import SCHEMA_VERSION, search_index
from tests.schemas.sample_dataset import sample_rows, write_sample


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """The search index cache goes to the test's folder, not ~/.cache."""
    monkeypatch.setenv("OMNI_CAPTION_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def dataset(tmp_path):
    return write_sample(tmp_path / "d.parquet")


@pytest.fixture
def shards(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    rows = sample_rows()
    write_sample(folder / "shard-00000.parquet", rows[:2])
    write_sample(folder / "shard-00001.parquet", rows[2:])
    return folder


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize(("option", "name", "fmt"), [
    ("--out", "rows.csv", ()), ("-o", "rows.jsonl", ()), ("--out", "rows.json", ()), ("--output", "rows.parquet", ()),
    ("--out", "rows.txt", ("--format", "csv")), ("--out", "rows.csv", ("--format", "json"))])
def test_query_writes_its_rows_to_out_in_the_format_its_name_ends_in_or_given(dataset, tmp_path, option, name, fmt):
    """`query ... --out x.parquet` failed: the option was --output alone, and for parquet alone."""
    out = tmp_path / name
    sql = "SELECT source_path, segment_index, flags FROM segments WHERE status = 'ok' ORDER BY 1, 2"
    result = invoke("query", dataset, sql, option, out, *fmt)
    assert result.exit_code == 0, result.output
    assert result.output == f"Wrote 4 rows to {out}\n"
    written = fmt[-1] if fmt else {".csv": "csv", ".parquet": "parquet"}.get(out.suffix, "json")
    if written == "parquet":
        assert pq.read_table(out).column("segment_index").to_pylist() == [0, 1, 2, 0]
    else:  # the file holds what the format prints
        printed = invoke("query", dataset, sql, "--format", written)
        assert printed.exit_code == 0 and out.read_bytes() == printed.stdout_bytes


@pytest.mark.parametrize("which", ["file", "folder"])
def test_query_writes_parquet(dataset, shards, tmp_path, which):
    source = dataset if which == "file" else shards
    out = tmp_path / "ok.parquet"
    result = invoke("query", source, "SELECT source_path, segment_index, caption FROM segments "
                                     "WHERE status = 'ok' ORDER BY source_path, segment_index",
                    "--format", "parquet", "--output", out)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Wrote 4 rows to {out}"
    table = pq.read_table(out)
    assert table.column_names == ["source_path", "segment_index", "caption"]
    assert table.column("segment_index").to_pylist() == [0, 1, 2, 0]


def test_query_parquet_needs_out_and_never_overwrites_the_dataset(dataset, shards):
    assert invoke("query", dataset, "SELECT 1", "--format", "parquet").exit_code == 2
    assert invoke("query", dataset, "SELECT 1", "--out", "x.txt").exit_code == 2  # no format to write it in
    assert invoke("query", dataset, "SELECT 1", "--format", "table", "--out", "x.csv").exit_code == 2
    assert invoke("query", dataset, "SELECT 1", "--format", "csv", "--out", f"{dataset.parent}/rows/").exit_code == 2
    assert not (dataset.parent / "rows").exists()  # a Path drops the `/`: a file `rows` was written
    before = dataset.read_bytes()
    result = invoke("query", dataset, "SELECT 1 AS a", "--format", "parquet", "--out", dataset)
    assert result.exit_code == 1 and "overwrite the dataset" in result.output
    assert dataset.read_bytes() == before
    inside = invoke("query", shards, "SELECT 1 AS a", "--format", "parquet", "--out", shards / "new.parquet")
    assert inside.exit_code == 1 and not (shards / "new.parquet").exists()


@pytest.mark.parametrize("fmt", ["hf", "jsonl", "srt", "lhotse"])
def test_export_never_writes_over_the_dataset_or_into_its_folder(dataset, shards, fmt):
    """An hf export over captions.parquet replaced it without its audio column (then unreadable to jsonl);
    one into a sharded dataset's folder added data/train-*.parquet, which the views read as more rows."""
    before = dataset.read_bytes()
    result = invoke("export", dataset, "--format", fmt, "--out", dataset)
    assert result.exit_code == 1 and result.output == (
        f"Error: --out {dataset} would overwrite the dataset being read ({dataset}), or write into its folder: give "
        "a path beside it\n")
    assert dataset.read_bytes() == before
    shards_before = sorted(p.name for p in shards.rglob("*"))
    inside = invoke("export", shards, "--format", fmt, "--out", shards / "exported")
    assert inside.exit_code == 1 and sorted(p.name for p in shards.rglob("*")) == shards_before


@pytest.mark.parametrize("command", [("export", "--format", "jsonl", "--out"), ("export", "--format", "hf", "--out"),
                                     ("query", "SELECT 1 AS a", "--format", "parquet", "--out")])
def test_nothing_is_written_over_a_file_named_as_a_recording(dataset, tmp_path, command):
    """`export ... --out talk.wav`, meant as another name, replaced that recording with JSON."""
    recording = tmp_path / "talk.wav"
    recording.write_bytes(b"RIFF....WAVE")
    name, *rest = command
    result = invoke(name, dataset, *rest, recording)
    option = rest[-1]
    assert result.exit_code == 1 and result.output == (
        f"Error: {option} {recording} is named as a recording (.wav): give the output another name\n")
    assert recording.read_bytes() == b"RIFF....WAVE"


@pytest.mark.parametrize("fmt, also", [("srt", ""), ("vtt", ""), ("lhotse", ""), ("hf", " (or a .parquet file)")])
def test_a_folder_export_given_a_file_says_so(dataset, tmp_path, fmt, also):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    result = invoke("export", dataset, "--format", fmt, "--out", notes)
    assert result.exit_code == 1 and result.output == (
        f"Error: --out {notes} is a file, and --format {fmt} writes a folder{also}: give a folder\n")
    assert notes.read_text() == "mine"


@pytest.mark.parametrize("fmt, name, why", [
    ("lhotse", "cuts.jsonl.gz", "is named as a file (.gz), and --format lhotse writes a folder: give a folder"),
    ("hf", "train.jsonl", "is named as a file (.jsonl), and --format hf writes a folder (or a .parquet file): give "
                          "a folder"),
    ("jsonl", "existing", "is a folder, and --format jsonl writes one file: give a file name, e.g. {out}/captions.jsonl"),
    ("csv", "existing", "is a folder, and --format csv writes one file: give a file name, e.g. {out}/captions.csv"),
])
def test_an_export_out_of_the_wrong_kind_says_so(dataset, tmp_path, fmt, name, why):
    """A folder named `cuts.jsonl.gz` was made; a file format given a folder said `[Errno 21] Is a directory`."""
    out = tmp_path / name
    if name == "existing":
        out.mkdir()
    result = invoke("export", dataset, "--format", fmt, "--out", out)
    assert result.exit_code == 1 and result.output == f"Error: --out {out} {why.format(out=out)}\n"
    assert sorted(tmp_path.iterdir()) == sorted([dataset] + ([out] if name == "existing" else []))
    assert name != "existing" or not any(out.iterdir())


def test_search_table_json_csv(dataset):
    table = invoke("search", dataset, "dog barking")
    assert table.exit_code == 0, table.output
    header, rule, hit = table.stdout.splitlines()
    assert header.split() == ["source_path", "segment_index", "start_s", "end_s", "score", "field", "text"]
    assert hit.startswith("a.wav") and hit.endswith("A dog barks loudly near the river.")
    assert invoke("search", dataset, "dog", "barking").stdout == table.stdout  # unquoted words: one search
    as_json = [json.loads(line) for line in invoke("search", dataset, "meeting", "--format", "json").stdout.splitlines()]
    assert [(h["source_path"], h["segment_index"]) for h in as_json] == [("talks/b.mp3", 0), ("talks/b.mp3", None)]
    assert as_json[0]["end_s"] == 9.5 and as_json[1]["field"] == "summary"
    as_csv = list(csv.reader(io.StringIO(invoke("search", dataset, "rain", "--format", "csv").stdout)))
    assert as_csv[0][:2] == ["source_path", "segment_index"] and as_csv[1][:2] == ["a.wav", "2"]
    assert invoke("search", dataset, "zebra").stdout.strip() == "no matches"


def test_search_table_lines_up_wide_characters_and_cuts_long_text(tmp_path):
    from omni_caption.schemas import SegmentRow
    long = "预算" * 100
    rows = [SegmentRow("r", "会议录音/第一次.wav", "s", 9.0, 0, 0.0, 3.0, caption="预算 " + long),
            SegmentRow("r", "会议录音/第一次.wav", "s", 9.0, 1, 3.0, 6.0, caption="预算 ok"),
            SegmentRow("q", "b.wav", "t", 9.0, 0, 0.0, 3.0, caption="预算 café")]
    result = invoke("search", write_sample(tmp_path / "w.parquet", rows), "预算")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()

    def columns(text: str) -> int:  # these texts hold only ASCII and two-column Han characters
        return len(text) + sum(1 for c in text if "\u4e00" <= c <= "\u9fff")

    # The second column starts in the same terminal column on every line, wide file names or not.
    second_column_starts = {columns(re.match(r"\S+\s+", line).group()) for line in lines}
    assert len(lines) == 5 and len(second_column_starts) == 1
    cut = next(line for line in lines if "…" in line)
    assert columns(cut[cut.index("预算 预算"):]) == 80  # the text cell, cut to 80 columns, the ellipsis included


def test_search_index_cache_can_be_turned_off(dataset, home):
    assert invoke("search", dataset, "dog", "--no-index-cache").exit_code == 0
    assert not (home / "search").exists()
    assert invoke("search", dataset, "dog").exit_code == 0
    assert len(list((home / "search").glob("*.duckdb"))) == 1


def test_search_over_a_folder_with_limit(shards):
    result = invoke("search", shards, "a", "--format", "json", "--limit", "2")
    assert result.exit_code == 0 and result.stdout == ""  # "a" is a stop word
    both = invoke("search", shards, "welcome roof", "--format", "json")
    assert sorted(json.loads(line)["source_path"] for line in both.stdout.splitlines()) == ["a.wav", "talks/b.mp3"]
    one = invoke("search", shards, "welcome roof", "--format", "json", "--limit", "1")
    assert len(one.stdout.splitlines()) == 1


def test_search_fallback_prints_one_notice_on_stderr(dataset, tmp_path, monkeypatch):
    def unavailable(con):
        raise search_index.FtsUnavailable("test: no extension")

    monkeypatch.setattr(search_index, "load_fts", unavailable)
    result = invoke("search", dataset, "meeting", "--format", "json")
    assert result.exit_code == 0
    assert result.stderr.strip() == "note: fts extension unavailable (test: no extension); using a plain ILIKE search"
    assert [json.loads(line)["source_path"] for line in result.stdout.splitlines()] == ["talks/b.mp3"] * 2


def test_info_text_and_json(dataset):
    result = invoke("info", dataset)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "recordings       3 (2 ok, 1 error)" in lines and "segments         4 (2 flagged)" in lines
    assert "audio hours      0.015" in lines and f"schema version   {SCHEMA_VERSION}" in lines
    assert "tool version     0.1.0" in lines
    assert "  truncated:caption: 2" in lines and "  bad.mp3: FFmpeg cannot read it as audio or video" in lines
    assert "  caption: Qwen/Qwen3-Omni-30B-A3B-Captioner@abc" in lines
    as_json = json.loads(invoke("info", dataset, "--format", "json").stdout)
    assert as_json["flag_counts"] == {"truncated:caption": 2, "repetition:transcript": 1}
    assert as_json["errors"] == [["bad.mp3", "FFmpeg cannot read it as audio or video"]]
    assert as_json["copies"] == 0 and not any(line.startswith("copies") for line in lines)


def test_info_counts_the_copies_of_a_recording(tmp_path):
    rows = sample_rows()
    copied = [replace(r, source_path=f"backup/{r.source_path}") for r in rows if r.source_path == "a.wav"]
    result = invoke("info", write_sample(tmp_path / "c.parquet", rows + copied))
    assert "copies           1 recording is byte-identical to another (the same recording_id), counted again in the " \
           "hours" in result.stdout.splitlines()


def test_info_caps_the_error_list(tmp_path):
    from omni_caption.schemas import SegmentRow

    rows = [SegmentRow.error_row(f"f{i}.wav", "broken") for i in range(5)]
    result = invoke("info", write_sample(tmp_path / "e.parquet", rows), "--max-errors", "2")
    assert "  f1.wav: broken" in result.stdout and "f2.wav" not in result.stdout
    assert "... and 3 more" in result.stdout


def test_a_name_or_text_holding_control_characters_is_shown_on_one_line_as_it_is(tmp_path):
    from omni_caption.schemas import SegmentRow

    rows = [SegmentRow.error_row("bad\nname.wav", "broken"), SegmentRow.error_row("esc\x1b[31mred.wav", "broken"),
            replace(sample_rows()[1], caption="A bell\a rings.")]
    dataset = write_sample(tmp_path / "c.parquet", rows)
    info = invoke("info", dataset).stdout
    assert "  bad\\nname.wav: broken\n" in info and "  esc\\x1b[31mred.wav: broken\n" in info
    assert "\x1b" not in info
    hit = invoke("search", dataset, "bell").stdout.splitlines()[-1]
    assert hit.endswith("A bell\\x07 rings.")


@pytest.mark.parametrize("fmt,out,files", [
    ("jsonl", "x.jsonl", ["x.jsonl"]),
    ("csv", "x.csv", ["x.csv"]),
    ("hf", "hf.parquet", ["hf.parquet"]),
    ("srt", "subs", ["subs/a.srt", "subs/talks__b.srt"]),
    ("vtt", "subs", ["subs/a.vtt", "subs/talks__b.vtt"]),
])
def test_export_formats(dataset, tmp_path, fmt, out, files):
    result = invoke("export", dataset, "--format", fmt, "--out", tmp_path / "x" / out)
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(tmp_path / "x").as_posix() for p in (tmp_path / "x").rglob("*") if p.is_file()) == files
    assert result.stdout.startswith(f"Wrote {4 if fmt in ('srt', 'vtt') else 5} ")


def test_export_csv_is_the_query_s_csv_with_an_embedded_clip_as_its_path(dataset, tmp_path):
    """There was no CSV export: `--format csv` was refused, listing the other formats."""
    from dataclasses import replace

    exported = invoke("export", dataset, "--format", "csv", "--out", tmp_path / "d.csv")
    assert exported.exit_code == 0 and (tmp_path / "d.csv").read_text(encoding="utf-8") == invoke(
        "query", dataset, "SELECT * FROM segments", "--format", "csv").stdout
    rows = [replace(row, audio={"bytes": b"fLaC" * 1000, "path": f"clip{i}.flac"}) for i, row in enumerate(sample_rows())]
    invoke("export", write_sample(tmp_path / "a.parquet", rows), "--format", "csv", "--out", tmp_path / "a.csv")
    read = list(csv.DictReader(open(tmp_path / "a.csv", encoding="utf-8", newline="")))
    assert [json.loads(row["audio"]) for row in read] == [{"path": f"clip{i}.flac"} for i in range(len(rows))]


def test_export_lhotse_finds_audio_through_the_stored_inputs(tmp_path):
    import numpy as np
    import soundfile as sf

    root = tmp_path / "recordings"
    (root / "talks").mkdir(parents=True)
    sf.write(root / "a.wav", np.zeros(45 * 16_000, dtype="float32"), 16_000)
    sf.write(root / "talks" / "b.wav", np.zeros(10 * 16_000, dtype="float32"), 16_000)
    rows = [r for r in sample_rows() if r.status == "ok"]
    rows = [r if r.source_path == "a.wav" else replace(r, source_path="talks/b.wav") for r in rows]
    dataset = write_sample(tmp_path / "d.parquet", rows, run_config={"inputs": [str(root)]})
    result = invoke("export", dataset, "--format", "lhotse", "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Wrote 4 supervisions to {tmp_path / 'm'} (2 files)" and result.stderr == ""
    other = tmp_path / "elsewhere"
    other.mkdir()
    moved = invoke("export", dataset, "--format", "lhotse", "--out", tmp_path / "m2", "--audio-root", other)
    assert moved.exit_code == 0 and moved.stderr.count("skipped: ") == 2
    records = duckdb.sql(f"SELECT count(*) FROM read_json('{tmp_path / 'm2' / 'recordings.jsonl.gz'}')")
    assert records.fetchone() == (0,)


def test_audio_root_for_a_format_that_reads_no_audio_is_a_mistake_said_at_once(dataset, tmp_path):
    result = invoke("export", dataset, "--format", "srt", "--out", tmp_path / "subs", "--audio-root", tmp_path)
    assert result.exit_code == 2 and result.output.strip().splitlines()[-1] == (
        "Error: --audio-root is for --format lhotse or nemo, whose manifests point at the recordings; --format srt "
        "does not read them")
    assert not (tmp_path / "subs").exists()


def test_export_needs_format_and_out(dataset):
    assert invoke("export", dataset, "--out", "x").exit_code == 2
    assert invoke("export", dataset, "--format", "pdf", "--out", "x").exit_code == 2


def test_help_lists_the_dataset_commands():
    output = invoke("--help").output
    for command in ("search", "info", "export"):
        assert command in output


def test_export_and_query_into_stdout_put_their_report_on_stderr(dataset, tmp_path):
    """`--out /dev/stdout | jq`: the JSON Lines are the output; a "Wrote ..." line among them would break it."""
    link = tmp_path / "stdout"
    target = tmp_path / "captured.jsonl"
    link.symlink_to(target)  # as /dev/stdout is a link to the process's fd 1
    result = CliRunner().invoke(cli, ["export", str(dataset), "--format", "jsonl", "--out", str(link)])
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == f"Wrote {len(sample_rows())} rows to {link} (1 file)\n"
    assert [json.loads(line)["source_path"] for line in target.read_text().splitlines()] == \
        [r.source_path for r in sample_rows()]
    result = CliRunner().invoke(cli, ["query", str(dataset), "SELECT 7 AS x", "--format", "parquet", "--output",
                                      str(link)])
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == f"Wrote 1 row to {link}\n"
    assert link.is_symlink() and pq.read_table(target).to_pylist() == [{"x": 7}]


@pytest.mark.parametrize("command", [["export", "--format", "jsonl", "--out", "/dev/stdout"],
                                     ["query", "SELECT * FROM segments", "--format", "csv"]])
def test_a_reader_that_stops_reading_is_no_error(dataset, command):
    """`... | head -1`: the pipe closes before the output is written; no 'Error: [Errno 32] Broken pipe'."""
    import subprocess
    import sys

    args = [sys.executable, "-m", "omni_caption", command[0], str(dataset), *command[1:]]
    reader, writer = os.pipe()
    os.close(reader)  # as `head` does once it has its line; here before the command writes anything
    try:
        # Block-buffered, as stdout to a pipe is for a user: PYTHONUNBUFFERED (set on some machines) hid that the
        # output met the closed pipe only at interpreter exit (exit 120, 'Exception ignored ... BrokenPipeError').
        env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
        done = subprocess.run(args, stdout=writer, stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    finally:
        os.close(writer)
    assert done.returncode == 1 and done.stderr == ""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("command", [["query", "SELECT * FROM segments", "--format", "json"], ["info"],
                                     ["search", "dog"]])
def test_output_into_a_full_disk_is_one_line_not_a_traceback(dataset, command):
    """`query ... > report.csv` on a full disk printed click's traceback, then Python's 'Exception ignored'."""
    import subprocess
    import sys

    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "omni_caption", command[0], str(dataset), *command[1:]],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    assert done.returncode == 1 and done.stderr == "Error: [Errno 28] No space left on device\n"


def test_csv_and_json_lines_are_written_a_chunk_of_rows_at_a_time_and_whole(dataset, monkeypatch):
    """All rows were fetched at once: about 4 KB of memory a row, 4 GB for a million segments."""
    from omni_caption.cli import query_output

    whole = {fmt: invoke("query", dataset, "SELECT * FROM segments", "--format", fmt).stdout for fmt in ("csv", "json")}
    monkeypatch.setattr(query_output, "ROWS_PER_FETCH", 2)
    for fmt, text in whole.items():
        assert invoke("query", dataset, "SELECT * FROM segments", "--format", fmt).stdout == text
    assert len(whole["json"].splitlines()) == len(sample_rows()) > 2 and len(list(csv.reader(io.StringIO(
        whole["csv"])))) == len(sample_rows()) + 1


def test_a_dash_for_out_is_stdout_as_for_files_from_it_is_stdin(dataset, tmp_path):
    """`export --out - | jq` wrote a file named `-` and nothing to the pipe."""
    import subprocess
    import sys

    args = [sys.executable, "-m", "omni_caption"]
    exported = subprocess.run([*args, "export", str(dataset), "--format", "jsonl", "--out", "-"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
    assert exported.returncode == 0, exported.stderr
    assert [json.loads(line)["source_path"] for line in exported.stdout.splitlines()] == \
        [r.source_path for r in sample_rows()]
    assert exported.stderr == f"Wrote {len(sample_rows())} rows to /dev/stdout (1 file)\n"
    queried = subprocess.run([*args, "query", str(dataset), "SELECT 7 AS x", "--format", "parquet", "--out", "-"],
                             cwd=tmp_path, capture_output=True, timeout=120)
    assert queried.returncode == 0 and pq.read_table(io.BytesIO(queried.stdout)).to_pylist() == [{"x": 7}]
    assert not (tmp_path / "-").exists()
    folder = invoke("export", dataset, "--format", "srt", "--out", "-")
    assert folder.exit_code == 2
    assert "--out - (stdout) is for --format jsonl, csv or nemo; --format srt writes files" in folder.output


def test_the_dataset_commands_never_import_torch(dataset, tmp_path):
    """`export` took 3 s where `query` took 0.5: a check on its --out imported the pipelines, and with them torch."""
    import subprocess
    import sys

    script = f"""
import sys
from click.testing import CliRunner
from omni_caption.cli.main import cli
for args in (["query", {str(dataset)!r}, "SELECT 1"], ["info", {str(dataset)!r}], ["search", {str(dataset)!r}, "dog"],
             ["export", {str(dataset)!r}, "--format", "csv", "--out", {str(tmp_path / "d.csv")!r}],
             ["export", {str(dataset)!r}, "--format", "srt", "--out", {str(tmp_path / "subs")!r}]):
    assert CliRunner().invoke(cli, args).exit_code == 0, args
print(sorted(name for name in ("torch", "transformers") if name in sys.modules))
"""
    env = {**os.environ, "OMNI_CAPTION_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize("command", [("export", "{dataset}", "--format", "jsonl", "--out", "-"),
                                     ("query", "{dataset}", "SELECT 7 AS x", "--format", "csv", "--out", "-"),
                                     ("export", "{dataset}", "--format", "csv", "--out", "/dev/stdout")])
def test_output_to_stdout_follows_what_the_shell_had_written_there(dataset, tmp_path, command):
    """`--out - >> all.jsonl` reopened stdout's file with truncation: a loop over datasets kept the last alone."""
    import subprocess
    import sys

    target = tmp_path / "all.txt"
    target.write_text("earlier line\n")
    args = [sys.executable, "-m", "omni_caption", *(a.format(dataset=dataset) for a in command)]
    with open(target, "a") as appended:
        assert subprocess.run(args, cwd=tmp_path, stdout=appended, timeout=120).returncode == 0
    with open(target, "a") as appended:
        assert subprocess.run(args, cwd=tmp_path, stdout=appended, timeout=120).returncode == 0
    lines = target.read_text().splitlines()
    assert lines[0] == "earlier line" and len(lines) > 3
    assert lines[1:] == lines[1:][:len(lines[1:]) // 2] * 2  # both runs' output, one after the other


def test_a_nemo_manifest_finds_the_recordings_under_the_run_s_inputs(tmp_path):
    import numpy as np
    import soundfile as sf

    audio_root = tmp_path / "audio"
    audio_root.mkdir()
    sf.write(audio_root / "a.wav", np.zeros(45 * 16_000, dtype="float32"), 16_000)
    dataset = write_sample(tmp_path / "d.parquet", run_config={"inputs": [str(audio_root)]})
    result = CliRunner().invoke(cli, ["export", str(dataset), "--format", "nemo", "--out", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    assert "Wrote 3 manifest lines" in result.output and "skipped: talks/b.mp3" in result.output
    assert len((tmp_path / "m.json").read_text().splitlines()) == 3
    folder = CliRunner().invoke(cli, ["export", str(dataset), "--format", "nemo", "--out", str(tmp_path)])
    assert folder.exit_code == 1 and f"give a file name, e.g. {tmp_path / 'manifest.json'}" in folder.output


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "nemo"])
def test_a_folder_named_with_a_slash_for_a_one_file_format_is_refused(dataset, tmp_path, fmt):
    """`export --format jsonl --out exports/` wrote a file named `exports`."""
    result = invoke("export", dataset, "--format", fmt, "--out", f"{tmp_path}/exports/")
    assert result.exit_code == 2 and "names a folder, and --format" in result.output
    assert not (tmp_path / "exports").exists()
