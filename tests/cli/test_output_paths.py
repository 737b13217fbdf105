"""What --out may name and what a run may replace (pipelines/output_checks.py), through click's CliRunner."""

import os
import shutil

import pytest
from click.testing import CliRunner

from omni_caption.cli.main import cli
from tests.conftest import EXAMPLES, finishes_within


def test_a_folder_out_must_hold_only_shards(tmp_path, cache_dir, tiny_dir):
    """`--out recordings` (the inputs' folder, meant as a file name) would put shards among the recordings."""
    shutil.copytree(EXAMPLES, tmp_path / "recordings")
    before = sorted(p.name for p in (tmp_path / "recordings").iterdir())
    args = ["--model", "tiny-random", "--cache-dir", str(cache_dir), "--max-new-tokens", "2", "--quiet"]
    for out in ("recordings", "recordings/"):
        result = CliRunner().invoke(cli, [str(tmp_path / "recordings" / "field"), "--out", str(tmp_path / out), *args])
        assert result.exit_code == 1 and result.output == (
            f"Error: --out {tmp_path / 'recordings'}: the folder holds other things than shards (README.txt, field/, "
            "meetings/ and 2 more); a sharded dataset needs a folder of its own: give a new or empty folder, or a "
            ".parquet file\n")
    assert sorted(p.name for p in (tmp_path / "recordings").iterdir()) == before
    # An empty folder (a hidden file aside), named with or without its slash, is a sharded dataset, and so is
    # the folder of shards it becomes.
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"")
    for _ in range(2):
        result = CliRunner().invoke(cli, [str(tmp_path / "recordings" / "field"), "--out", str(tmp_path / "empty"),
                                          *args])
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == [".DS_Store", "shard-00000.parquet"]


def test_a_device_or_pipe_as_out_is_refused_not_replaced(tmp_path, cache_dir):
    """Renamed over by root, `--out /dev/null` became a regular file: the machine lost its /dev/null."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = finishes_within(60, lambda: CliRunner().invoke(cli, [str(EXAMPLES), "--out", str(fifo), "--model",
                                                                  "tiny-random", "--cache-dir", str(cache_dir),
                                                                  "--quiet"]),
                             "the run waited on the pipe")
    assert result.exit_code == 1 and result.output == (
        f"Error: --out {fifo} is a named pipe, not a dataset: a run writes a .parquet file (with its .parts/ and "
        ".lock beside it) or a folder/ of shards\n")
    assert fifo.is_fifo() and sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_unwritable_out(tmp_path, cache_dir):
    # /sys refuses new files even to root, unlike permission bits.
    result = CliRunner().invoke(cli, [str(EXAMPLES), "--out", "/sys/captions.parquet", "--model", "tiny-random",
                                      "--cache-dir", str(cache_dir), "--quiet"])
    assert result.exit_code == 1 and "not writable" in result.output


def test_an_out_that_holds_someone_elses_parquet_is_replaced_only_when_asked(tmp_path, cache_dir, tiny_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "theirs.parquet"
    pq.write_table(pa.table({"a": [1, 2, 3]}), out)
    before = out.read_bytes()
    args = [str(EXAMPLES / "meetings"), "--out", str(out), "--model", "tiny-random", "--cache-dir", str(cache_dir),
            "--max-new-tokens", "3", "--quiet"]
    for extra in ([], ["--dry-run"]):
        result = CliRunner().invoke(cli, args + extra)
        assert result.exit_code == 1 and result.output.strip() == (
            f"Error: --out {out}: {out} is Parquet but not an omni-caption dataset (no recording_id, source_path, "
            "source_sha256, status columns); give another --out, or add --overwrite to replace it")
        assert out.read_bytes() == before
    result = CliRunner().invoke(cli, args + ["--overwrite"])  # asked for: replaced by a dataset of ours
    assert result.exit_code == 0, result.output
    assert pq.read_schema(out).names[:2] == ["recording_id", "source_path"]


@pytest.mark.parametrize("case", ["mp3 bytes named .parquet", "a text file", "one of the recordings"])
def test_an_out_that_is_not_a_dataset_is_never_replaced(tmp_path, cache_dir, tiny_dir, case):
    """`--out talks/a.wav --overwrite`, one slip of the shell's history, replaced a recording with Parquet."""
    talks = tmp_path / "talks"
    shutil.copytree(EXAMPLES / "meetings", talks)
    if case == "one of the recordings":
        out = sorted(talks.iterdir())[0]
        why = f"is named as a recording ({out.suffix}), not a dataset: name it .parquet, or give a folder/ for shards"
    else:
        out = tmp_path / ("theirs.parquet" if case.startswith("mp3") else "notes.txt")
        shutil.copy(EXAMPLES / "podcast_episode.mp3", out)
        why = "is not a Parquet file (another kind of file): give another --out; --overwrite replaces only a dataset"
    before = out.read_bytes()
    args = [str(talks), "--out", str(out), "--model", "tiny-random", "--cache-dir", str(cache_dir),
            "--max-new-tokens", "3", "--quiet"]
    for extra in ([], ["--dry-run"], ["--overwrite"]):
        result = CliRunner().invoke(cli, args + extra)
        assert result.exit_code == 1 and result.output.strip() == f"Error: --out {out} {why}"
        assert out.read_bytes() == before


def test_an_empty_file_at_out_is_taken_with_overwrite(tmp_path, cache_dir, tiny_dir):
    out = tmp_path / "captions.parquet"
    out.touch()  # as `mktemp` leaves it: nothing to lose
    result = CliRunner().invoke(cli, [str(EXAMPLES / "meetings"), "--out", str(out), "--overwrite", "--model",
                                      "tiny-random", "--cache-dir", str(cache_dir), "--max-new-tokens", "3", "--quiet"])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0


@pytest.mark.parametrize("name,then", [
    ("captions.jsonl", "export {parquet} --format jsonl --out {out}"),
    ("captions.SRT", "export {parquet} --format srt --out {out}"),
    ("captions.csv", "export {parquet} --format csv --out {out}"),
])
def test_an_out_named_as_another_format_is_refused_with_the_command_that_writes_it(tmp_path, cache_dir, name, then):
    """`--out captions.jsonl` wrote Parquet under that name, which pandas.read_json and every player refused."""
    out, parquet = tmp_path / name, tmp_path / "captions.parquet"
    result = CliRunner().invoke(cli, [str(EXAMPLES / "meetings"), "--out", str(out), "--model", "tiny-random",
                                      "--cache-dir", str(cache_dir), "--dry-run"])
    assert result.exit_code == 1 and result.output.strip() == (
        f"Error: --out {out}: a run writes Parquet, which that name would pass off as {out.suffix}; name it "
        f"captions.parquet (or give a folder/ for shards), then: omni-caption {then.format(parquet=parquet, out=out)}")
    assert not any(tmp_path.iterdir())
