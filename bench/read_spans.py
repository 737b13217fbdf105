"""Reading every segment of a long recording the way a caption stage does: torchcodec's range API vs ours.

    python bench/read_spans.py [--minutes 40] [--formats opus,flac,m4a,mp3] [--json FILE]

A caption stage reads its segments' audio sorted by duration (similar
lengths share a batch), so not in time order. The file is tiled with 20-30 s
chunks (seeded) and each way reads all of them in that order:

- range: `AudioDecoder.get_samples_played_in_range`, what `AudioFile.read` used
  to call (decodes from the stream's start for a span not after the last);
- forward: `span_reader.ForwardSpans` alone (a new pass for each backward span);
- cache: what the pipeline now does: the segmentation pass also writes the
  decoded samples to a temporary file (timed here as a decode-only pass, the
  VAD's share left out), then every span is a file read.

Prints seconds and x realtime per way and format (audio seconds / wall).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CODECS = {"opus": ["-c:a", "libopus", "-b:a", "32k"], "flac": [], "m4a": ["-c:a", "aac"],
          "mp3": ["-c:a", "libmp3lame"], "wav": []}


def make_file(folder: Path, fmt: str, seconds: float) -> Path:
    path = folder / f"long.{fmt}"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"aevalsrc=0.3*sin(2*PI*(200+0.05*t)*t):s=48000:d={seconds}", *CODECS[fmt], str(path)],
                   check=True)
    return path


def chunk_spans(seconds: float, seed: int = 0) -> list[tuple[float, float]]:
    """20-30 s chunks tiling the file, in the order a stage reads them: by duration."""
    rng = np.random.default_rng(seed)
    spans, start = [], 0.0
    while start < seconds:
        end = min(seconds, start + float(rng.uniform(20.0, 30.0)))
        spans.append((start, end))
        start = end
    return sorted(spans, key=lambda span: span[1] - span[0])


def time_range_api(path: Path, spans) -> float:
    from torchcodec.decoders import AudioDecoder

    decoder = AudioDecoder(str(path), sample_rate=16_000, num_channels=1)
    started = time.perf_counter()
    for start, end in spans:
        decoder.get_samples_played_in_range(start, end)
    return time.perf_counter() - started


def time_forward(path: Path, spans) -> float:
    from omni_caption.pipelines import AudioFile
    from omni_caption.pipelines.span_reader import ForwardSpans

    reader = ForwardSpans(AudioFile(path))
    started = time.perf_counter()
    for start, end in spans:
        reader.read(start, end)
    return time.perf_counter() - started


def time_cache(path: Path, spans) -> tuple[float, float]:
    from omni_caption.pipelines import AudioFile
    from omni_caption.pipelines.span_reader import DecodedAudioCache

    started = time.perf_counter()
    cache = DecodedAudioCache()
    for _ in cache.tee(AudioFile(path).blocks()):
        pass
    cache.finished()
    filled = time.perf_counter()
    for start, end in spans:
        cache.read(start, end)
    read = time.perf_counter() - filled
    cache.close()
    return filled - started, read


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=40.0)
    parser.add_argument("--formats", default="opus,flac,m4a,mp3")
    parser.add_argument("--skip-range", action="store_true", help="leave out the slow range-API way")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    seconds = args.minutes * 60
    spans = chunk_spans(seconds)
    print(f"{platform.processor() or platform.machine()}, {len(spans)} spans of 20-30 s over {args.minutes:g} min, "
          "read sorted by duration")
    print(f"{'format':<7} {'way':<8} {'seconds':>8} {'x realtime':>11}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for fmt in args.formats.split(","):
            path = make_file(Path(folder), fmt, seconds)
            ways = {} if args.skip_range else {"range": time_range_api(path, spans)}
            ways["forward"] = time_forward(path, spans)
            fill, read = time_cache(path, spans)
            ways["cache"] = fill + read
            for way, wall in ways.items():
                rows.append({"format": fmt, "way": way, "seconds": round(wall, 3),
                             "x_realtime": round(seconds / wall, 1)})
                extra = f"  (fill {fill:.2f} s + reads {read:.3f} s)" if way == "cache" else ""
                print(f"{fmt:<7} {way:<8} {wall:>8.2f} {seconds / wall:>11.1f}{extra}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
