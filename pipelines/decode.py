"""Decode any container FFmpeg reads to 16 kHz mono float32, through torchcodec."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000


class DecodeError(RuntimeError):
    """The file could not be decoded; the message is one line for the error row."""


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32, mono, SAMPLE_RATE
    sample_rate: int = SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    def slice(self, start_s: float, end_s: float) -> np.ndarray:
        return self.samples[int(round(start_s * self.sample_rate)):int(round(end_s * self.sample_rate))]


def _short_reason(exc: Exception, path: Path) -> str:
    # torchcodec prefixes C++ source locations and repeats the path; keep the reason.
    text = " ".join(str(exc).split()) or type(exc).__name__
    if ".cpp:" in text:
        text = text.split(".cpp:", 1)[1].split(", ", 1)[-1]
    text = text.replace(f"{path}", "").replace(": ", " ").strip()
    if text.startswith("Could not open input file"):
        detail = text.removeprefix("Could not open input file").strip()
        return f"FFmpeg cannot read it as audio or video ({detail or 'unknown format'})"
    return text


def decode_audio(path: str | Path) -> DecodedAudio:
    from torchcodec.decoders import AudioDecoder

    path = Path(path)
    if path.stat().st_size == 0:
        raise DecodeError("empty file (0 bytes)")
    try:
        decoder = AudioDecoder(str(path), sample_rate=SAMPLE_RATE, num_channels=1)
        samples = decoder.get_all_samples().data
    except Exception as exc:  # torchcodec raises RuntimeError/ValueError with C++ context
        raise DecodeError(_short_reason(exc, path)) from exc
    mono = samples.mean(dim=0) if samples.ndim == 2 else samples
    audio = mono.float().numpy()
    if audio.size == 0:
        raise DecodeError("no audio samples decoded (no audio stream, or zero length)")
    if not np.isfinite(audio).all():
        raise DecodeError("decoded audio contains NaN or infinite samples")
    return DecodedAudio(np.ascontiguousarray(audio))
