"""The README's set-up commands are the ones CI runs, and the demo's paths exist."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), flags=re.S)


def test_exactly_two_setup_commands():
    assert len(bash_blocks()) == 2


def test_ci_runs_the_readme_test_command():
    assert bash_blocks()[1] in (REPO / ".ci" / "run").read_text().splitlines()


def test_demo_command_runs_tiny_random_on_examples_then_queries():
    demo = bash_blocks()[0]
    assert "apt-get install -y ffmpeg" in demo
    assert "omni-caption examples/recordings --out captions.parquet --model tiny-random" in demo
    assert demo.rstrip().split(" && ")[-1].startswith(".venv/bin/omni-caption query captions.parquet")
    assert (REPO / "examples" / "recordings").is_dir()
