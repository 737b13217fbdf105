import pytest

from omni_caption.schemas import SCHEMA_VERSION
from omni_caption.schemas.dataset_info import describe_dataset
from omni_caption.schemas.duckdb_views import dataset_files
from tests.schemas.sample_dataset import CAPTIONER, INSTRUCT, sample_rows, write_sample


def test_describe_counts_hours_flags_errors_and_provenance(tmp_path):
    summary = describe_dataset(write_sample(tmp_path / "d.parquet"))
    assert summary.schema_versions == [SCHEMA_VERSION] and summary.tool_versions == ["0.1.0"]
    assert summary.audio_hours == pytest.approx((45.0 + 10.0) / 3600)  # per recording, not per segment
    assert (summary.recordings, summary.recordings_ok, summary.recordings_error) == (3, 2, 1)
    assert (summary.segments, summary.flagged_segments) == (4, 2)
    assert summary.flag_counts == {"truncated:caption": 2, "repetition:transcript": 1}
    assert summary.errors == [("bad.mp3", "FFmpeg cannot read it as audio or video")]
    assert summary.models == {"caption": [CAPTIONER], "transcript": [INSTRUCT]}
    assert summary.prompt_versions == ["p1"] and summary.languages == {"English": 3}


def test_a_folder_of_shards_is_one_dataset(tmp_path):
    rows = sample_rows()
    shards = tmp_path / "out"
    shards.mkdir()
    write_sample(shards / "shard-00000.parquet", rows[:3])
    write_sample(shards / "shard-00001.parquet", rows[3:])
    summary = describe_dataset(shards)
    assert len(summary.files) == 2 and summary.segments == 4 and summary.recordings == 3


def test_files_without_our_metadata_read_as_the_first_schema(tmp_path):
    import pyarrow.parquet as pq

    from omni_caption.schemas import rows_to_table

    path = tmp_path / "plain.parquet"
    pq.write_table(rows_to_table(sample_rows()), path)  # e.g. written by another tool
    summary = describe_dataset(path)
    # No version key: the first schema, exactly as the migrations read such a file.
    assert summary.schema_versions == ["1"] and summary.tool_versions == ["unknown"]


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        dataset_files(tmp_path)


def test_a_recording_with_a_failed_task_counts_as_partial_and_lists_why(tmp_path):
    from dataclasses import replace

    from omni_caption.schemas import run_query

    why = "summary failed: CUDA out of memory summarising even 32-token pieces"
    rows = [replace(r, error=why, flags=(*r.flags, "failed:summary")) if r.source_path == "talks/b.mp3" else r
            for r in sample_rows()]
    path = write_sample(tmp_path / "d.parquet", rows)
    summary = describe_dataset(path)
    assert (summary.recordings_ok, summary.recordings_partial, summary.recordings_error) == (1, 1, 1)
    assert summary.audio_hours == pytest.approx((45.0 + 10.0) / 3600) and summary.segments == 4
    assert summary.errors == [("bad.mp3", "FFmpeg cannot read it as audio or video"), ("talks/b.mp3", why)]
    assert run_query(path, "SELECT source_path, status, error FROM recordings ORDER BY 1").fetchall() == [
        ("a.wav", "ok", None), ("bad.mp3", "error", "FFmpeg cannot read it as audio or video"),
        ("talks/b.mp3", "partial", why)]


def test_another_tools_parquet_is_named_in_one_line_by_every_dataset_command(tmp_path):
    """Before: a DuckDB binder error about the `recordings` view's GROUP BY source_path."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from click.testing import CliRunner

    from omni_caption.cli.main import cli

    theirs = tmp_path / "theirs.parquet"
    pq.write_table(pa.table({"source_path": ["a.wav"], "text": ["hello"]}), theirs)
    why = f"{theirs} is Parquet but not an omni-caption dataset (no recording_id, source_sha256, status columns)"
    for command in (["info", theirs], ["query", theirs, "SELECT 1"], ["search", theirs, "hello"],
                    ["export", theirs, "--format", "srt", "--out", tmp_path / "subs"],
                    ["speak", theirs, "--out", tmp_path / "voices", "--model", "tiny-random"]):
        result = CliRunner().invoke(cli, [str(part) for part in command])
        assert result.exit_code == 1 and result.output.strip().splitlines() == [f"Error: {why}"], command


@pytest.mark.parametrize("make_bad, why", [
    (lambda good: b"ID3\x03 an mp3 called .parquet", "another kind of file"),
    (lambda good: good[:len(good) // 2], "cut short: it has no footer"),  # a half-copied dataset
])
def test_a_file_that_is_not_whole_parquet_is_named_in_one_line(tmp_path, make_bad, why):
    from click.testing import CliRunner

    from omni_caption.cli.main import cli
    from omni_caption.schemas.duckdb_views import NotADataset, connect_readonly

    good = write_sample(tmp_path / "good.parquet").read_bytes()
    folder = tmp_path / "shards"
    folder.mkdir()
    (folder / "shard-00000.parquet").write_bytes(good)
    bad = folder / "shard-00001.parquet"
    bad.write_bytes(make_bad(good))
    for opener in (dataset_files, connect_readonly, describe_dataset):
        with pytest.raises(NotADataset, match=f"{bad} is not a whole Parquet file \\({why}\\)"):
            opener(folder)
    for command in (["info", str(bad)], ["query", str(bad), "SELECT 1"], ["search", str(folder), "dog"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 1 and result.output.strip().splitlines() == [
            f"Error: {bad} is not a whole Parquet file ({why})"]


def test_byte_identical_copies_are_counted_once_each_beyond_the_first(tmp_path):
    """A corpus copied into two folders trained on each segment twice, with nothing to say so."""
    from dataclasses import replace

    rows = sample_rows()
    copied = [replace(r, source_path=f"backup/{r.source_path}") for r in rows if r.source_path == "a.wav"]
    assert describe_dataset(write_sample(tmp_path / "d.parquet")).copies == 0
    assert describe_dataset(write_sample(tmp_path / "c.parquet", rows + copied)).copies == 1
