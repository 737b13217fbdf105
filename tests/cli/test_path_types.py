"""`~` in path options, which no shell expands in `--out=~/x.parquet` or in a --config file (cli/path_types.py)."""

import json

import duckdb
import pytest
from click.testing import CliRunner

from omni_caption.cli.main import cli
from tests.conftest import EXAMPLES


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home folder, and a working folder beside it where a literal `~` would land."""
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "home"


def test_out_files_from_query_and_export_expand_a_tilde(home, cache_dir, tiny_dir):
    (home / "list.txt").write_text(f"{EXAMPLES / 'field' / 'voice_memo.m4a'}\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["--files-from=~/list.txt", "--out=~/captions.parquet", "--model", "tiny-random",
                                 "--cache-dir", str(cache_dir), "--max-new-tokens", "4", "--quiet"])
    assert result.exit_code == 0, result.output
    assert duckdb.sql(f"SELECT count(*) FROM '{home / 'captions.parquet'}'").fetchone() == (1,)
    query = runner.invoke(cli, ["query", "~/captions.parquet", "SELECT count(*) AS n FROM recordings",
                                "--format", "json"])
    assert query.exit_code == 0, query.output
    assert json.loads(query.output) == {"n": 1}  # one JSON object per row
    exported = runner.invoke(cli, ["export", "~/captions.parquet", "--format", "jsonl", "--out=~/rows.jsonl"])
    assert exported.exit_code == 0, exported.output
    assert len((home / "rows.jsonl").read_text().splitlines()) == 1
    assert not (home.parent / "work" / "~").exists()


def test_a_config_file_s_paths_expand_a_tilde(home):
    """`cache-dir = "~/cache"` made a folder named `~` in the working folder."""
    (home / "project.toml").write_text('out = "~/captions.parquet"\ncache-dir = "~/cache"\nmodel = "tiny-random"\n')
    result = CliRunner().invoke(cli, [str(EXAMPLES / "field"), "--config=~/project.toml", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"output  {home / 'captions.parquet'} holds work for 0 of them" in result.output
    assert (home / "cache" / "file-hashes.sqlite3").exists()
    assert not (home.parent / "work" / "~").exists()
