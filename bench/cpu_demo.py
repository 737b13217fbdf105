"""CPU figures for the offline demo: x realtime and peak RSS of the main job.

    python bench/cpu_demo.py [--repeat N] [--tasks caption] [--engine local|ray]

Copies examples/recordings N times into a temp folder (more audio, same
speech), runs the main job in-process with tiny-random and prints the
figures. tiny-random's compute is tiny, so this measures the data plane
(decode, chunking, batching, Parquet) plus transformers' per-call overhead.
With `--engine ray` the same run goes through a local Ray cluster of all this
machine's CPUs (started before the clock starts), model actors on CPU.
"""

from __future__ import annotations

import argparse
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--tasks", default="caption")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--engine", default="local", choices=["local", "ray"])
    args = parser.parse_args()

    import torch

    from omni_caption.model import LoadOptions, load_model
    from omni_caption.pipelines import RayOptions, RunOptions, run_corpus

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = tmp / "corpus"
        for i in range(args.repeat):
            shutil.copytree(REPO / "examples" / "recordings", corpus / f"copy{i:03d}")
        cache = tmp / "home"
        t0 = time.monotonic()
        load_model("tiny-random", LoadOptions(device="cpu", cache_dir=cache))  # build once, not timed below
        build_s = time.monotonic() - t0
        options = RunOptions(tasks=tuple(args.tasks.split(",")), model="tiny-random", cache_dir=cache,
                             max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, device="cpu",
                             engine=args.engine, ray=RayOptions(num_gpus_per_worker=0))
        if args.engine == "ray":
            import ray

            ray.init(include_dashboard=False, log_to_driver=False)
        summary = run_corpus([corpus], tmp / "out.parquet", options, show_progress=False)
    print(f"machine        {platform.machine()} {platform.processor() or ''}, {torch.get_num_threads()} torch threads")
    print(f"torch          {torch.__version__}")
    print(f"recordings     {summary.recordings} ({summary.errors} error rows), {summary.segments} segments")
    print(f"audio          {summary.audio_s:.1f} s")
    print(f"tiny build     {build_s:.1f} s (first use only)")
    print(f"wall           {summary.wall_s:.1f} s (model load included)")
    print(f"speed          {summary.realtime_factor:.1f}x realtime")
    print(f"engine         {args.engine}")
    print(f"peak RSS       {peak_rss_mib():.0f} MiB (this process{': the Ray driver' if args.engine == 'ray' else ''})")


if __name__ == "__main__":
    sys.exit(main())
