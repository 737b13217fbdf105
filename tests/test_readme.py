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


def test_the_python_example_runs_as_written(tmp_path, monkeypatch, cache_dir, tiny_dir):
    """The README's Python run, executed from a folder holding the examples as the README's working copy does."""
    import duckdb

    block = re.search(r"## From Python\n.*?```python\n(.*?)\n```", (REPO / "README.md").read_text(), flags=re.S)
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "recordings").symlink_to(REPO / "examples" / "recordings")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMNI_CAPTION_HOME", str(cache_dir))
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    summary = namespace["summary"]
    assert (summary.ok, summary.errors) == (4, 1) and summary.error_lines
    rows = duckdb.sql("SELECT count(*) FROM 'captions.parquet' WHERE status = 'ok' AND transcript IS NOT NULL")
    assert rows.fetchone()[0] == summary.segments  # every segment has its transcript
    assert namespace["preview_run"]("examples/recordings", "captions.parquet", namespace["options"]).nothing_to_do
