"""Shell completion as bash asks for it: click's protocol, through CliRunner."""

import os

import pytest
from click.testing import CliRunner

from omni_caption.cli.main import cli


def completions(line: str, tmp_path, folders: tuple[str, ...] = ()) -> list[str]:
    """What bash is told for the command line `line` (its last word is the one completed, maybe empty), in a
    working folder holding `folders`."""
    env = {"_OMNI_CAPTION_COMPLETE": "bash_complete", "COMP_WORDS": line, "COMP_CWORD": str(line.count(" "))}
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path):
        for folder in folders:
            os.mkdir(folder)
        result = runner.invoke(cli, [], env=env, prog_name="omni-caption")
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_the_main_job_s_options_complete_before_its_first_path(tmp_path):
    # click offered only the group's --help and --version: the main job's options come after a path
    assert completions("omni-caption --ta", tmp_path) == ["plain,--tasks"]
    assert "plain,--version" in completions("omni-caption --", tmp_path)
    assert completions("omni-caption talks/ --ta", tmp_path) == ["plain,--tasks"]


def test_a_word_is_a_command_unless_the_folder_holds_a_name_that_starts_so(tmp_path):
    commands = ["export", "info", "query", "run", "search", "speak"]
    assert completions("omni-caption ", tmp_path) == [f"plain,{name}" for name in commands]
    assert completions("omni-caption q", tmp_path) == ["plain,query"]
    assert completions("omni-caption r", tmp_path) == ["plain,run"]
    assert completions("omni-caption r", tmp_path, folders=("recordings",)) == ["file,r"]  # the path to run on
    assert completions("omni-caption talks", tmp_path) == ["file,talks"]  # no command starts so


@pytest.mark.parametrize("option", ["--model", "--caption-model", "--summary-model"])
def test_models_complete_to_presets_then_to_folders(tmp_path, option):
    tiny = ["plain,tiny-random", "plain,tiny-random-2.5"]
    assert completions(f"omni-caption talks/ {option} tiny", tmp_path) == tiny
    assert completions(f"omni-caption talks/ {option} ./my-finetune", tmp_path) == ["dir,./my-finetune"]
    qwen25 = ["plain,qwen2.5-omni-3b", "plain,qwen2.5-omni-7b"]
    assert completions("omni-caption speak ds.parquet --model qwen", tmp_path) == qwen25


def test_tasks_complete_as_a_comma_list_without_repeats(tmp_path):
    every_task = ["plain,caption", "plain,transcript", "plain,reasoning", "plain,summary"]
    assert completions("omni-caption talks/ --tasks ", tmp_path) == every_task
    after_caption = ["plain,caption,transcript", "plain,caption,reasoning", "plain,caption,summary"]
    assert completions("omni-caption talks/ --tasks caption,", tmp_path) == after_caption
    last = completions("omni-caption talks/ --tasks transcript,caption,r", tmp_path)
    assert last == ["plain,transcript,caption,reasoning"]
