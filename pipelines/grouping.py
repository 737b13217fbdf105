"""Which recordings go together: a group is segmented, run and committed as one part.

A model batch holds the segments of one group, so a group must hold enough
audio to fill a batch: 16 recordings of 40 minutes give about 1,300 chunks,
but 16 clips of 30 s give 16, and the GPU would decode a corpus of short
clips sixteen at a time. By default a group closes once it has at least 16
recordings and an hour of audio (by the files' headers), at most 4,096
recordings; a crash redoes at most one group, an hour of audio, seconds of
GPU time at the engine's rate. `--commit-every N` asks for exactly N.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

MIN_GROUP_RECORDINGS = 16
GROUP_AUDIO_S = 3600.0
MAX_GROUP_RECORDINGS = 4096

T = TypeVar("T")


def fixed_groups(items: Sequence[T], size: int) -> list[tuple[T, ...]]:
    return [tuple(items[i:i + size]) for i in range(0, len(items), size)]


def auto_groups(items: Sequence[T], seconds_of: Callable[[T], float]) -> list[tuple[T, ...]]:
    """`items` in order, in groups of at least MIN_GROUP_RECORDINGS and GROUP_AUDIO_S of audio (the last may
    hold less), at most MAX_GROUP_RECORDINGS. `seconds_of` is asked only while a group is short of audio."""
    groups: list[tuple[T, ...]] = []
    group: list[T] = []
    audio_s = 0.0
    for item in items:
        group.append(item)
        if audio_s < GROUP_AUDIO_S:
            audio_s += seconds_of(item)
        full = len(group) >= MIN_GROUP_RECORDINGS and audio_s >= GROUP_AUDIO_S
        if full or len(group) >= MAX_GROUP_RECORDINGS:
            groups.append(tuple(group))
            group, audio_s = [], 0.0
    if group:
        groups.append(tuple(group))
    return groups


class HeaderSeconds:
    """Each file's length by its header (FFmpeg's, a guess for some formats: close enough to size a group),
    read once per run; 0 for a file that cannot be opened (its error row comes later)."""

    def __init__(self):
        self._seconds: dict[Path, float] = {}

    def __call__(self, path: Path) -> float:
        if path not in self._seconds:
            from .decode import audio_decoder

            try:
                self._seconds[path] = float(audio_decoder(path).metadata.duration_seconds or 0.0)
            except Exception:  # noqa: BLE001 - any reason is the file's, and its error row says it
                self._seconds[path] = 0.0
        return self._seconds[path]
