"""Silero VAD over a stream of audio blocks: speech regions plus per-frame energy.

Memory stays bounded for any length: only one span of audio (minutes) is held
at a time, and what is kept per 32 ms frame is two floats. Frames of a span are
scored as parallel rows of one batch (each row re-reads a little context from
the row before), which is several times faster than silero's frame loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .segment import TimeSpan

SAMPLE_RATE = 16_000
FRAME = 512  # silero's window at 16 kHz: 32 ms
FRAME_S = FRAME / SAMPLE_RATE


@dataclass(frozen=True)
class VadOptions:
    threshold: float = 0.5
    min_speech_ms: int = 250
    min_silence_ms: int = 100
    speech_pad_ms: int = 30
    row_frames: int = 938  # ~30 s per batch row
    context_frames: int = 16  # ~0.5 s of the previous row, so state warm-up costs nothing


@dataclass
class VadResult:
    regions: list[TimeSpan]  # speech, in seconds from the recording's first sample
    frame_energy: np.ndarray  # RMS per FRAME, for cutting long speech at its quietest point
    duration_s: float
    frame_probs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32), repr=False)
    frame_peak: np.ndarray | None = field(default=None, repr=False)  # loudest |sample| per FRAME: digital silence


@contextmanager
def _intra_op_threads(threads: int | None) -> Iterator[None]:
    """torch's CPU threads for the calling thread only, put back after (the count is per thread).

    silero on CPU runs faster on one thread than on two (bench/RESULTS.md), and the segmenter calls it
    beside the model: two pools of threads on the same cores made a CPU run three times slower."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SileroVad:
    """Loads silero-vad once; `analyse` runs it over a recording's blocks."""

    def __init__(self, options: VadOptions = VadOptions(), device: str = "cpu"):
        import torch

        threads = torch.get_num_threads()
        from silero_vad import load_silero_vad

        self.model = load_silero_vad().to(device)
        self.device = device
        # Importing silero_vad sets torch to one thread process-wide; give the model its threads back.
        torch.set_num_threads(threads)
        self.options = options

    def frame_probabilities(self, samples: np.ndarray, previous_tail: np.ndarray) -> np.ndarray:
        """Speech probability per FRAME of `samples` (length a multiple of FRAME, except at the end)."""
        import torch

        opts = self.options
        context = opts.context_frames * FRAME
        padded_len = -(-len(samples) // FRAME) * FRAME
        # Equal rows no longer than row_frames: a short clip is not padded out to a full 30 s row.
        frames = padded_len // FRAME
        rows_needed = max(1, -(-frames // opts.row_frames))
        row = -(-frames // rows_needed) * FRAME
        audio = np.zeros(len(previous_tail) + padded_len, dtype=np.float32)
        audio[:len(previous_tail)] = previous_tail
        audio[len(previous_tail):len(previous_tail) + len(samples)] = samples
        head = len(previous_tail)
        rows, starts = [], list(range(0, padded_len, row))
        for start in starts:
            before = audio[max(0, head + start - context):head + start]
            body = audio[head + start:head + start + row]
            # Context pads on the left (none before the file starts), a short last row on the right.
            rows.append(np.concatenate([np.zeros(context - len(before), np.float32), before, body,
                                        np.zeros(row - len(body), np.float32)]))
        batch = torch.from_numpy(np.stack(rows)).to(self.device)
        self.model.reset_states()
        with torch.inference_mode(), _intra_op_threads(1 if self.device == "cpu" else None):
            probs = self.model.audio_forward(batch, SAMPLE_RATE).float().cpu().numpy()
        frames = [probs[i, opts.context_frames:] for i in range(len(starts))]
        return np.concatenate(frames)[:padded_len // FRAME]

    def analyse(self, blocks: Iterable[tuple[float, np.ndarray]]) -> VadResult:
        """`blocks`: (start time, samples) in order; each block's length a multiple of FRAME but the last."""
        from silero_vad import get_speech_timestamps_from_probs

        probs, energy, peak, total = [], [], [], 0
        tail = np.zeros(0, dtype=np.float32)
        for _start_s, samples in blocks:
            probs.append(self.frame_probabilities(samples, tail))
            frames = np.pad(samples, (0, -len(samples) % FRAME)).reshape(-1, FRAME)
            energy.append(np.sqrt(np.mean(frames ** 2, axis=1)))
            peak.append(np.max(np.abs(frames), axis=1))
            tail = samples[-self.options.context_frames * FRAME:]
            total += len(samples)
        frame_probs = np.concatenate(probs) if probs else np.zeros(0, dtype=np.float32)
        opts = self.options
        stamps = get_speech_timestamps_from_probs(
            frame_probs.tolist(), sampling_rate=SAMPLE_RATE, threshold=opts.threshold,
            min_speech_duration_ms=opts.min_speech_ms, min_silence_duration_ms=opts.min_silence_ms,
            speech_pad_ms=opts.speech_pad_ms, audio_length_samples=total,
        ) if total else []
        regions = [TimeSpan(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]
        return VadResult(regions=regions, frame_energy=np.concatenate(energy) if energy else np.zeros(0),
                         duration_s=total / SAMPLE_RATE, frame_probs=frame_probs,
                         frame_peak=np.concatenate(peak) if peak else np.zeros(0))
