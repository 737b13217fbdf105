"""What the run tests share: a quick tiny-random run's options, and a dataset's rows in a fixed order."""

from omni_caption.pipelines import RunOptions
from omni_caption.schemas import read_dataset


def tiny_run_options(cache_dir, **extra) -> RunOptions:
    """Greedy captions (reproducible) from the tiny random model on the CPU, a few tokens each."""
    return RunOptions(**{"tasks": ("caption",), "model": "tiny-random", "greedy": True, "max_new_tokens": 6,
                         "cache_dir": cache_dir, "device": "cpu", **extra})


def rows_of(path) -> list[dict]:
    """The rows (but their audio) by recording, then segment: the order two runs are compared in."""
    table, _ = read_dataset(path)
    return sorted(table.drop_columns(["audio"]).to_pylist(), key=lambda r: (r["source_path"], r["segment_index"] or -1))
