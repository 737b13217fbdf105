"""Spans of a recording by recording time (from its first sample), without decoding from the start for each one.

torchcodec's range API (`get_samples_played_in_range`) decodes from the
start of the stream whenever a span does not begin after everything it has
decoded so far, and the frame that ends one span always runs past it, so even
the next span starts over: reading the 80 spans of a 40-minute Opus file
took 87 s (27x realtime), the last ones 2 s each. Two readers fix that:

- `ForwardSpans`: one sequential pass that only goes back to the start when a
  span begins before the previous one (linear for spans in time order);
- `DecodedAudioCache`: the 16 kHz samples of a pass written to a temporary
  file, so spans in any order are a file read (the caption stages read their
  segments sorted by duration, not by time).

Both give exactly the samples of one whole-file decode, except that a
sequential pass ends without the resampler's last few samples (about 1 ms)
that a whole decode flushes. torchcodec's range reads are also shifted by a
few ms after an earlier read (tests/pipelines/test_span_reader.py).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .decode import SAMPLE_RATE, zero_nonfinite


class ForwardSpans:
    """Spans of one file from a sequential decode; a span before the last one read starts a new pass."""

    def __init__(self, audio):
        self.audio = audio  # an AudioFile: each pass is its `frames()`
        self.passes = 0
        self._restart()

    def _restart(self) -> None:
        self._frames = iter(self.audio.frames())
        self._started = False  # a frame of this pass has been read
        self._dropped = 0  # samples of this pass before the buffer
        self._pieces: list[np.ndarray] = []
        self._buffered = 0
        self._ended = False
        self.passes += 1

    @staticmethod
    def _index(time_s: float) -> int:
        return int(round(time_s * SAMPLE_RATE))  # DecodedFrames counts from the first sample

    def read(self, start_s: float, end_s: float) -> np.ndarray:
        if self._started and self._index(start_s) < self._dropped:
            self._restart()  # behind what this pass kept: only a new pass can give it
        while not self._ended and (not self._started or self._dropped + self._buffered < self._index(end_s)):
            frame = next(self._frames, None)
            if frame is None:
                self._ended = True
                break
            _seconds, samples = frame
            self._started = True
            self._pieces.append(np.asarray(samples, dtype=np.float32))
            self._buffered += len(samples)
        if not self._started:
            return np.zeros(0, dtype=np.float32)
        buffer = np.concatenate(self._pieces) if len(self._pieces) != 1 else self._pieces[0]
        first = min(max(0, self._index(start_s) - self._dropped), len(buffer))
        last = min(max(first, self._index(end_s) - self._dropped), len(buffer))
        span = zero_nonfinite(buffer[first:last].copy())
        # Keep from this span's start on: the next span may begin inside it (overlapping windows).
        self._pieces, self._buffered = [buffer[first:]], len(buffer) - first
        self._dropped += first
        return span


class DecodedAudioCache:
    """One recording's decoded 16 kHz samples in a temporary file: written once in order, read in any order.

    float32 as decoded, so a span is the same samples a decode gives (64 KB per second of audio, 230 MB an
    hour, in TMPDIR). The file has no name (unlinked as it is made), so its space comes back when `close`
    is called, the cache is collected, or the process dies, even by SIGKILL. A write that fails (disk
    full) drops the cache; the caller then reads spans from the source instead.
    """

    def __init__(self, folder: Path | None = None):
        self._file = tempfile.TemporaryFile(prefix="omni-caption-audio-", suffix=".f32", dir=folder)
        self.samples = 0
        self.broken = False

    def append(self, block: np.ndarray) -> None:
        self._file.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
        self.samples += len(block)

    def tee(self, blocks: Iterator[tuple[float, np.ndarray]]) -> Iterator[tuple[float, np.ndarray]]:
        """`blocks` passed on unchanged, each also appended here while writing works."""
        for start_s, block in blocks:
            if not self.broken:
                try:
                    self.append(block)
                except OSError:
                    self.broken = True
                    self.close()
            yield start_s, block

    def finished(self) -> DecodedAudioCache | None:
        """This cache, flushed and ready to read; None if a write failed."""
        if self.broken:
            return None
        try:
            self._file.flush()
        except OSError:
            self.close()
            return None
        return self

    def read(self, start_s: float, end_s: float) -> np.ndarray:
        # Blocks count from the recording's first sample (DecodedFrames), as the file holds them.
        first = min(max(0, int(round(start_s * SAMPLE_RATE))), self.samples)
        last = min(max(first, int(round(end_s * SAMPLE_RATE))), self.samples)
        data = os.pread(self._file.fileno(), (last - first) * 4, first * 4)
        return np.frombuffer(data, dtype=np.float32).copy()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def bytes_on_disk(self) -> int:
        return os.fstat(self._file.fileno()).st_size

    def close(self) -> None:
        self._file.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def new_audio_cache() -> DecodedAudioCache | None:
    """A cache in TMPDIR, or None where no temporary file can be made."""
    try:
        return DecodedAudioCache()
    except OSError:
        return None


def fill_audio_cache(audio, blocks: Iterator[tuple[float, np.ndarray]] | None = None) -> DecodedAudioCache | None:
    """A cache of `audio` (an AudioFile) made by one sequential pass, or None where there is no room.
    `blocks`: that pass, where the caller watches it (default `audio.blocks()`)."""
    cache = new_audio_cache()
    if cache is None:
        return None
    try:
        for _ in cache.tee(audio.blocks() if blocks is None else blocks):
            pass
    except BaseException:
        cache.close()
        raise
    return cache.finished()
