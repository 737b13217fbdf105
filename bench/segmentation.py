"""Segmentation throughput and memory on a long recording: decode -> VAD -> windows -> chunks.

    python bench/segmentation.py [--minutes 60] [--format opus] [--threads N]

Builds an N-minute recording from espeak-ng speech with pauses and background
noise (ffmpeg loops a 2-minute piece, so the generator itself holds nothing
large), then runs the same Segmenter the main job uses and prints x realtime
and peak RSS. Needs espeak-ng and ffmpeg.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SENTENCES = [
    "Good morning and welcome to the weekly planning meeting",
    "The first item is the budget for the field recordings",
    "We spent about four thousand euros on microphones and travel",
    "Next is the transcription backlog of forty hours",
    "Let us run them through the captioning pipeline tonight",
    "Please review the captions tomorrow morning before lunch",
]


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_recording(folder: Path, minutes: float, fmt: str) -> Path:
    rng = np.random.default_rng(0)
    pieces = []
    for i, sentence in enumerate(SENTENCES * 4):
        wav = folder / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), sentence], check=True)
        audio, rate = sf.read(wav, dtype="float32")
        pieces += [audio, np.zeros(int(rng.uniform(0.3, 2.5) * rate), dtype=np.float32)]
    piece = np.concatenate(pieces)
    piece += rng.normal(0, 0.003, piece.shape).astype(np.float32)  # room noise, so silence is not digital zero
    piece_path = folder / "piece.wav"
    sf.write(piece_path, piece, rate)
    loops = int(np.ceil(minutes * 60 / (len(piece) / rate)))
    out = folder / f"long.{fmt}"
    codec = {"opus": ["-c:a", "libopus", "-b:a", "32k"], "flac": ["-c:a", "flac"], "mp3": ["-c:a", "libmp3lame"]}[fmt]
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", str(loops - 1), "-i", str(piece_path),
                    "-t", str(minutes * 60), "-ac", "1", *codec, str(out)], check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--format", default="opus", choices=["opus", "flac", "mp3"])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import torch

    from omni_caption.pipelines import RunOptions, SourceFile
    from omni_caption.pipelines.segmenter import Segmenter

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_recording(Path(tmp), args.minutes, args.format)
        segmenter = Segmenter(RunOptions())
        segmenter.vad()  # load silero before measuring
        base = rss_mib()
        started = time.monotonic()
        recording = segmenter.prepare(SourceFile(path, path.name))
        wall = time.monotonic() - started
        peak = peak_rss_mib()
        segments = recording.segments
        windows = sum(len(s.windows) for s in segments)
        print(f"file           {args.minutes:.0f} min {args.format}, {path.stat().st_size / 2**20:.1f} MiB")
        print(f"torch          {torch.__version__}, {torch.get_num_threads()} threads")
        print(f"segments       {len(segments)} chunks (<= 30 s), {windows} utterance windows")
        print(f"wall           {wall:.1f} s (sha256 + decode + VAD + segmentation)")
        print(f"speed          {recording.duration_s / wall:.1f}x realtime")
        print(f"RSS            {base:.0f} MiB before, peak {peak:.0f} MiB (process, torch + silero included)")
        print(f"peak - before  {peak - base:.0f} MiB")


if __name__ == "__main__":
    main()
