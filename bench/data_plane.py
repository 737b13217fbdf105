"""How fast the data plane can feed a model: the main job on long recordings with tiny-random.

    python bench/data_plane.py [--minutes 20] [--files 8] [--format opus] [--segment-threads 1,4]
                               [--device auto] [--max-new-tokens 4] [--commit-every 4]

tiny-random's compute is next to nothing, so the x realtime printed is what
decode + VAD + segmentation + reading spans + log-mel + batching + Parquet can
sustain on this machine: the ceiling the data plane puts on a real model's
rate. On a GPU machine it says whether the CPU side keeps up with the 300x the
GPU engine aims at (issue #7). Each --segment-threads value is one run over the
same files, with the tiny model built before the clock starts.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ scripts are loaded by path, not as a package

from segmentation import build_recordings, peak_rss_mib  # noqa: E402


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--format", default="opus", choices=["opus", "flac", "mp3"])
    parser.add_argument("--segment-threads", default="1,4", help="comma-separated; one run each")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--torch-threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--max-new-tokens", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--decoder", default="plain", help="plain: no compile time in a data-plane figure")
    parser.add_argument("--commit-every", type=int, default=4, help="recordings per group; the next group is "
                        "segmented while the model works on this one")
    args = parser.parse_args(argv)

    import torch

    from omni_caption.model import LoadOptions, load_model
    from omni_caption.pipelines import RunOptions, run_corpus

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = tmp / "corpus"
        corpus.mkdir()
        build_recordings(corpus, args.minutes, args.format, args.files)
        for leftover in [*corpus.glob("s*.wav"), corpus / "piece.wav"]:
            leftover.unlink(missing_ok=True)  # the generator's pieces are not part of the corpus
        cache = tmp / "home"
        device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        load_model("tiny-random", LoadOptions(device=device, cache_dir=cache))  # built once, before any clock
        print(f"machine   {platform.machine()}, {torch.get_num_threads()} torch threads, device {device}"
              f"{' (' + torch.cuda.get_device_name() + ')' if device.startswith('cuda') else ''}")
        print(f"corpus    {args.files} x ~{args.minutes:g} min {args.format}")
        print("segment threads | wall s | audio s | x realtime | segments")
        for threads in [int(t) for t in args.segment_threads.split(",") if t.strip()]:
            options = RunOptions(tasks=("caption",), model="tiny-random", cache_dir=cache, device=device,
                                 max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                                 decoder=args.decoder, segment_threads=threads, group_recordings=args.commit_every)
            started = time.monotonic()
            out = tmp / f"out{len(results)}.parquet"  # a new output each run: nothing resumed
            summary = run_corpus([corpus], out, options, show_progress=False)
            wall = time.monotonic() - started
            if summary.errors:
                raise SystemExit(f"error rows: {summary.error_lines[:2]}")
            results.append({"segment_threads": threads, "wall_s": round(wall, 1), "audio_s": round(summary.audio_s, 1),
                            "x_realtime": round(summary.audio_s / wall, 1), "segments": summary.segments})
            print(f"{threads} | {wall:.1f} | {summary.audio_s:.0f} | {summary.audio_s / wall:.1f} | {summary.segments}",
                  flush=True)
    print(f"peak RSS  {peak_rss_mib():.0f} MiB")
    return results


if __name__ == "__main__":
    main()
