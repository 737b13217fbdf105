"""Command lines that say other than what was meant: a misspelt command, `query` forgotten, a dataset among
the inputs, `--tasks` given twice, SQL left unquoted."""

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from omni_caption.cli.main import cli
from omni_caption.file_kinds import is_dataset
from omni_caption.pipelines.decode import PARQUET_NOT_AUDIO, TEXT_NOT_AUDIO
from tests.conftest import EXAMPLES
from tests.schemas.sample_dataset import sample_rows, write_sample


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
    (tmp_path / "empty").mkdir()
    assert not is_dataset(tmp_path / "empty")


def test_a_parquet_file_among_the_inputs_is_an_error_row_that_says_what_it_is(tmp_path, cache_dir, tiny_dir):
    dataset = _write_parquet(tmp_path / "old.parquet")
    out = tmp_path / "new.parquet"
    result = CliRunner().invoke(cli, [str(dataset), "--out", str(out), "--model", "tiny-random",
                                      "--cache-dir", str(cache_dir), "-q"])
    assert result.exit_code == 0 and f"  error: old.parquet: {PARQUET_NOT_AUDIO}" in result.stderr.splitlines()
    assert pq.read_table(out).column("error").to_pylist() == [PARQUET_NOT_AUDIO]


def test_a_list_of_recordings_given_as_a_recording_is_an_error_row_naming_files_from(tmp_path, cache_dir, tiny_dir):
    listing = tmp_path / "batch1.txt"
    listing.write_text("meetings/monday.wav\nmeetings/tuesday.wav\n")
    out = tmp_path / "new.parquet"
    result = CliRunner().invoke(cli, [str(listing), "--out", str(out), "--model", "tiny-random",
                                      "--cache-dir", str(cache_dir), "-q"])
    assert result.exit_code == 0 and f"  error: batch1.txt: {TEXT_NOT_AUDIO}" in result.stderr.splitlines()
    assert pq.read_table(out).column("error").to_pylist() == [TEXT_NOT_AUDIO]


@pytest.mark.parametrize(("content", "text"), [
    (b"a.wav\nb.wav\n", True), ("caf\u00e9.wav\n".encode("utf-16"), True), ("naïve".encode() * 900, True),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb", False), (b"RIFF\x24\x00\x00\x00WAVEfmt ", False), (b"", False),
    (b"\x1a\x45\xdf\xa3", False)])
def test_what_is_a_text_file(tmp_path, content, text):
    from omni_caption.file_kinds import is_text_file

    (tmp_path / "f").write_bytes(content)
    assert is_text_file(tmp_path / "f") is text


def test_a_misspelt_command_says_so_and_a_path_of_that_name_still_runs(tmp_path, monkeypatch, cache_dir, tiny_dir):
    """`serach` was taken for a folder to caption, and the answer was "Missing option '--out'"."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["serach", "ds.parquet", "dog"])
    assert result.exit_code == 2 and result.output.strip().splitlines()[-1] == (
        "Error: no command 'serach' (did you mean 'search'?), and no file or folder of that name to run the main "
        "job on")
    (tmp_path / "serach").mkdir()  # a folder of that name is a run over it, as ever
    shutil.copy(EXAMPLES / "podcast_episode.mp3", tmp_path / "serach")
    result = CliRunner().invoke(cli, ["serach", "--out", "o.parquet", "--model", "tiny-random", "--cache-dir",
                                      str(cache_dir), "--dry-run"])
    assert result.exit_code == 0 and "inputs  1 recording" in result.output


def test_tasks_given_twice_are_both_run(tmp_path, cache_dir, tiny_dir):
    """The second --tasks replaced the first: captions were silently left out."""
    result = CliRunner().invoke(cli, [str(EXAMPLES / "meetings"), "--out", str(tmp_path / "o.parquet"), "--tasks",
                                      "caption", "--tasks", "transcript,summary", "--model", "tiny-random",
                                      "--cache-dir", str(cache_dir), "--dry-run"])
    assert result.exit_code == 0, result.output
    stages = [line.split("[")[0].strip() for line in result.output.splitlines() if "to do:" in line]
    assert stages == ["caption+transcript", "summary"]


def test_sql_left_unquoted_is_named_with_the_file_names_the_shell_put_for_its_star(tmp_path, monkeypatch):
    """`query ds.parquet SELECT * FROM segments` said "Got unexpected extra arguments (notes.txt talks FROM ...)"."""
    dataset = write_sample(tmp_path / "d.parquet")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "talks").mkdir()
    result = CliRunner().invoke(cli, ["query", str(dataset), "SELECT", "d.parquet", "talks", "FROM", "segments"])
    assert result.exit_code == 2 and result.output.strip().splitlines()[-1] == (
        'Error: the SQL is one argument: quote it whole, as in omni-caption query DATASET "SELECT * FROM segments" '
        "(the shell put the names of files here where * stood: d.parquet, talks)")
    quoted = CliRunner().invoke(cli, ["query", str(dataset), "SELECT count(*) AS n FROM segments", "--format", "csv"])
    assert quoted.exit_code == 0 and quoted.output.splitlines() == ["n", str(len(sample_rows()))]
