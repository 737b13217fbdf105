"""`--config FILE.toml` (cli/config_file.py) and the flags a run would not use (cli/unused_flags.py), through
click's CliRunner on the example recordings."""

import shutil

import duckdb
import pytest
from click.testing import CliRunner

from omni_caption.cli.main import cli
from tests.conftest import EXAMPLES


def test_config_file_supplies_defaults(tmp_path, cache_dir, tiny_dir):
    audio = tmp_path / "in"
    audio.mkdir()
    shutil.copy(EXAMPLES / "field" / "voice_memo.m4a", audio)
    config = tmp_path / "oc.toml"
    config.write_text(f'model = "tiny-random"\ntasks = "transcript"\nmax-new-tokens = 4\n'
                      f'cache-dir = "{cache_dir}"\nlanguage = "en"\n')
    out = tmp_path / "x.parquet"
    result = CliRunner().invoke(cli, [str(audio), "--out", str(out), "--config", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    row = duckdb.sql(f"SELECT transcript, caption, language, scores.transcript_tokens FROM '{out}'").fetchone()
    assert row[0] is not None and row[1] is None and row[2] == "English" and row[3] <= 4


def test_a_misspelt_config_key_is_an_error_not_silently_the_default(tmp_path):
    config = tmp_path / "oc.toml"
    config.write_text('model = "tiny-random"\nmax_new_token = 64\n')
    result = CliRunner().invoke(cli, [str(EXAMPLES), "--out", str(tmp_path / "x.parquet"), "--config", str(config)])
    assert result.exit_code == 2 and not (tmp_path / "x.parquet").exists()
    assert f"{config}: 'max_new_token' is not an option of this command (did you mean 'max-new-tokens'?)" in \
        " ".join(result.output.split())
    config.write_text('colour = "blue"\n')
    result = CliRunner().invoke(cli, [str(EXAMPLES), "--out", str(tmp_path / "x.parquet"), "--config", str(config)])
    assert result.exit_code == 2 and "'colour' is not an option of this command; options: aut-window, " in \
        " ".join(result.output.split())


@pytest.mark.parametrize("setting,why", [
    ("diarize = 1", "diarize = 1: --diarize is a switch: give true or false"),
    ("max-new-tokens = 3.7", "max-new-tokens = 3.7: give a whole number"),
    ("loop_stop_tokens = 96.5", "loop_stop_tokens = 96.5: give a whole number"),
    ("model = true", "model = true: true or false is only for switches; give the option's value"),
    ("seed = 2026-11-24", "seed = 2026-11-24: give a string or a number"),
    ('[run]\nmodel = "tiny-random"', "[run] is a table of no command (tables: [speak]); put the run's options at "
                                          "the top of the file, before any [table]"),
])
def test_a_config_value_of_the_wrong_kind_is_refused_not_bent_to_fit(tmp_path, setting, why):
    """Click took 3.5 for an integer as 3, and `diarize = 1` crashed with a traceback."""
    config = tmp_path / "oc.toml"
    config.write_text(setting + "\n")
    result = CliRunner().invoke(cli, [str(EXAMPLES), "--out", str(tmp_path / "x.parquet"), "--config", str(config),
                                      "--dry-run"])
    assert result.exit_code == 2, result.exception
    assert f"{config}: {why}" in " ".join(result.output.split())


def test_config_switches_take_toml_booleans_and_the_command_lines_words(tmp_path):
    config = tmp_path / "oc.toml"
    for switch in ("greedy = true", 'greedy = "yes"', "greedy = false"):
        config.write_text(f'model = "tiny-random"\n{switch}\n')
        result = CliRunner().invoke(cli, [str(EXAMPLES), "--out", str(tmp_path / "x.parquet"), "--config",
                                          str(config), "--dry-run"])
        assert result.exit_code == 0, result.output


def test_config_lists_are_the_comma_lists_the_flags_take(tmp_path, cache_dir, tiny_dir):
    config = tmp_path / "oc.toml"
    config.write_text(f'model = "tiny-random"\ntasks = ["caption", "transcript"]\nmax_new_tokens = 2\n'
                      f'cache_dir = "{cache_dir}"\ngreedy = true\n')
    out = tmp_path / "x.parquet"
    result = CliRunner().invoke(cli, [str(EXAMPLES / "field" / "voice_memo.m4a"), "--out", str(out),
                                      "--config", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    assert duckdb.sql(f"SELECT caption IS NOT NULL, transcript IS NOT NULL FROM '{out}'").fetchall() == [(True, True)]


@pytest.mark.parametrize("flags,why", [
    (["--question", "Is anyone angry?"], "--question is for the reasoning task, which --tasks leaves out: add "
                                         "reasoning to --tasks (now caption)"),
    (["--tasks", "caption,summary", "--language", "de"], "--language is for the transcript task, which --tasks "
                                                         "leaves out: add transcript to --tasks (now caption,summary)"),
    (["--summary-from", "audio"], "--summary-from is for the summary task"),
    (["--transcript-model", "tiny-random"], "--transcript-model is for the transcript task"),
    (["--num-speakers", "2"], "--num-speakers is for diarization: add --diarize"),
    (["--workers", "4"], "--workers is for the Ray engine: add --engine ray"),
])
def test_a_flag_this_run_would_not_use_is_refused_before_any_work(tmp_path, flags, why):
    """`--question` without reasoning captioned the corpus and asked nothing; `--num-speakers` without
    --diarize named no speakers."""
    result = CliRunner().invoke(cli, [str(EXAMPLES), "--out", str(tmp_path / "o.parquet"), *flags])
    assert result.exit_code == 2 and result.output.strip().splitlines()[-1].startswith(f"Error: {why}")
    assert not any(tmp_path.iterdir())


def test_the_same_flags_from_a_config_file_are_defaults_for_the_runs_that_use_them(tmp_path, cache_dir, tiny_dir):
    config = tmp_path / "defaults.toml"
    config.write_text('question = "Is anyone angry?"\nnum-speakers = 2\nlanguage = "de"\n')
    result = CliRunner().invoke(cli, [str(EXAMPLES), "--out", str(tmp_path / "o.parquet"), "--model", "tiny-random",
                                      "--cache-dir", str(cache_dir), "--config", str(config), "--dry-run"])
    assert result.exit_code == 0, result.output
