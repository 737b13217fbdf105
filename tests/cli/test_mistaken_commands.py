"""A dataset named where recordings go: `query` forgotten, or a Parquet file in the inputs."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from omni_caption.cli.main import cli
from omni_caption.file_kinds import is_dataset
from omni_caption.pipelines.decode import PARQUET_NOT_AUDIO


def _write_parquet(path):
    pq.write_table(pa.table({"caption": ["a dog barks"]}), path)
    return path


@pytest.mark.parametrize("sharded", [False, True])
def test_query_forgotten_says_how_to_read_the_dataset(tmp_path, sharded):
    """`omni-caption captions.parquet "SELECT ..."` was answered "Missing option '--out'"."""
    if sharded:
        (tmp_path / "captions").mkdir()
        _write_parquet(tmp_path / "captions" / "shard-00000.parquet")
        dataset = tmp_path / "captions"
    else:
        dataset = _write_parquet(tmp_path / "captions.parquet")
    result = CliRunner().invoke(cli, [str(dataset), "SELECT count(*) FROM segments"])
    assert result.exit_code == 2 and result.output.strip().splitlines()[-1] == (
        f'Error: {dataset} is a dataset, not a recording: read it with omni-caption query {dataset} "SELECT ..." '
        "(or search, info, export); a run over recordings needs --out")


def test_a_folder_of_recordings_without_out_is_still_missing_out(tmp_path):
    (tmp_path / "talk.wav").write_bytes(b"RIFF")
    _write_parquet(tmp_path / "captions.parquet")  # an output kept beside the recordings: still their folder
    result = CliRunner().invoke(cli, [str(tmp_path)])
    assert result.exit_code == 2 and "Error: Missing option '--out' / '-o'." in result.output


def test_what_is_a_dataset(tmp_path):
    assert is_dataset(_write_parquet(tmp_path / "a.parquet"))
    (tmp_path / "shards").mkdir()
    _write_parquet(tmp_path / "shards" / "shard-00000.parquet")
    assert is_dataset(tmp_path / "shards")
    (tmp_path / "shards" / "talk.mp3").write_bytes(b"ID3")
    assert not is_dataset(tmp_path / "shards")  # a recording beside it makes a folder one to caption
    (tmp_path / "named.parquet").write_bytes(b"RIFF....WAVE")  # the name is not the test: the bytes are
    assert not is_dataset(tmp_path / "named.parquet") and not is_dataset(tmp_path / "gone.parquet")
    assert not is_dataset(tmp_path / "empty") and (tmp_path / "empty").mkdir() is None
    assert not is_dataset(tmp_path / "empty")


def test_a_parquet_file_among_the_inputs_is_an_error_row_that_says_what_it_is(tmp_path, cache_dir, tiny_dir):
    dataset = _write_parquet(tmp_path / "old.parquet")
    out = tmp_path / "new.parquet"
    result = CliRunner().invoke(cli, [str(dataset), "--out", str(out), "--model", "tiny-random",
                                      "--cache-dir", str(cache_dir), "-q"])
    assert result.exit_code == 0 and f"  error: old.parquet: {PARQUET_NOT_AUDIO}" in result.stderr.splitlines()
    assert pq.read_table(out).column("error").to_pylist() == [PARQUET_NOT_AUDIO]
