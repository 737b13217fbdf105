"""Segmentation throughput and memory on a long recording: decode -> VAD -> windows -> chunks.

    python bench/segmentation.py [--minutes 60] [--format opus] [--threads N] [--files F --segment-threads K]

Builds an N-minute recording from espeak-ng speech with pauses and background
noise (ffmpeg loops a 2-minute piece, so the generator itself holds nothing
large), then runs the same Segmenter the main job uses and prints x realtime
and peak RSS. With --files F it builds F such recordings (each a second shorter
than the one before, so no two share a hash) and segments them as one group,
K at a time, as the main job does with --segment-threads. Needs espeak-ng and
ffmpeg.
"""

from __future__ import annotations

import argparse
import resource
import shutil
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


def spoken(wav: Path, sentence: str, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """espeak-ng's speech; where it is not installed (the GPU machine), a voiced buzz of the same length.

    VAD costs the same per frame whatever it hears, so the speed figure stands; the segments differ."""
    if shutil.which("espeak-ng"):
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), sentence], check=True)
        audio, rate = sf.read(wav, dtype="float32")
        return audio, rate
    rate, seconds = 22050, 0.07 * len(sentence)
    t = np.arange(int(rate * seconds)) / rate
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    buzz = np.sign(np.sin(2 * np.pi * np.cumsum(pitch) / rate)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    return (0.2 * buzz + rng.normal(0, 0.02, t.shape)).astype(np.float32), rate


def build_recordings(folder: Path, minutes: float, fmt: str, files: int = 1) -> list[Path]:
    rng = np.random.default_rng(0)
    pieces = []
    for i, sentence in enumerate(SENTENCES * 4):
        audio, rate = spoken(folder / f"s{i}.wav", sentence, rng)
        pieces += [audio, np.zeros(int(rng.uniform(0.3, 2.5) * rate), dtype=np.float32)]
    piece = np.concatenate(pieces)
    piece += rng.normal(0, 0.003, piece.shape).astype(np.float32)  # room noise, so silence is not digital zero
    piece_path = folder / "piece.wav"
    sf.write(piece_path, piece, rate)
    loops = int(np.ceil(minutes * 60 / (len(piece) / rate)))
    codec = {"opus": ["-c:a", "libopus", "-b:a", "32k"], "flac": ["-c:a", "flac"], "mp3": ["-c:a", "libmp3lame"]}[fmt]
    paths = []
    for i in range(files):
        out = folder / f"long{i}.{fmt}"
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", str(loops - 1), "-i", str(piece_path),
                        "-t", str(minutes * 60 - i), "-ac", "1", *codec, str(out)], check=True)
        paths.append(out)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--format", default="opus", choices=["opus", "flac", "mp3"])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (silero on CPU uses one)")
    parser.add_argument("--files", type=int, default=1, help="recordings segmented as one group")
    parser.add_argument("--segment-threads", type=int, default=1, help="recordings segmented at once")
    args = parser.parse_args()

    import torch

    from omni_caption.pipelines import RunOptions, SourceFile
    from omni_caption.pipelines.segmenter import Recording, Segmenter

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        paths = build_recordings(Path(tmp), args.minutes, args.format, args.files)
        options = RunOptions(segment_threads=args.segment_threads)
        segmenter = Segmenter(options, threads=options.segmenter_threads())
        segmenter.warm_up()  # load silero before measuring
        base = rss_mib()
        started = time.monotonic()
        recordings = segmenter.prepare_all([(SourceFile(p, p.name), None) for p in paths])
        wall = time.monotonic() - started
        peak = peak_rss_mib()
        failed = [r for r in recordings if not isinstance(r, Recording)]
        if failed:
            raise SystemExit(f"segmentation failed: {failed[0].error}")
        audio_s = sum(r.duration_s for r in recordings)
        segments = [s for r in recordings for s in r.segments]
        windows = sum(len(s.windows) for s in segments)
        for recording in recordings:
            recording.release_audio()
        size = sum(p.stat().st_size for p in paths) / 2**20
        print(f"files          {args.files} x ~{args.minutes:.0f} min {args.format}, {size:.1f} MiB in all")
        print(f"torch          {torch.__version__}, {torch.get_num_threads()} threads; VAD on {options.vad_device()}")
        print(f"segmenter      {segmenter.threads} recording(s) at once, {segmenter.vads_loaded} VAD model(s)")
        print(f"segments       {len(segments)} chunks (<= 30 s), {windows} utterance windows")
        print(f"wall           {wall:.1f} s (sha256 + decode + VAD + segmentation + decoded-audio cache)")
        print(f"speed          {audio_s / wall:.1f}x realtime")
        print(f"RSS            {base:.0f} MiB before, peak {peak:.0f} MiB (process, torch + silero included)")
        print(f"peak - before  {peak - base:.0f} MiB")


if __name__ == "__main__":
    main()
