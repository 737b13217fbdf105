"""Which recordings go together: a group is segmented, run and committed as one part.

A model batch holds the segments of one group, so a group must hold enough
audio to fill a batch: 16 recordings of 40 minutes give about 1,300 chunks,
but 16 clips of 30 s give 16, and the GPU would decode a corpus of short
clips sixteen at a time. By default a group closes once it has at least 16
recordings and enough audio by the files' headers, at most 4,096 recordings:
an hour, or QUEUE_FILL batches of the slots that decode at once, whichever
is more. The refill engine idles slots while a group's last captions end: in
bench/gpu_throughput.py's queue runs (64 slots, captions of 400 +- 30 %
tokens) a queue of 1, 2, 4 and 8 batches kept 64, 71, 75 and 87 % of the
slot-steps busy. A crash redoes at most one group: on a GPU, 256 slots x 4 x
30 s, about 8.5 hours of audio, under two minutes at the engine's target rate.
`--commit-every N` asks for exactly N.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

MIN_GROUP_RECORDINGS = 16
GROUP_AUDIO_S = 3600.0  # the least audio a group holds
MAX_GROUP_RECORDINGS = 4096
QUEUE_FILL = 4  # a group holds at least this many batches of segments

T = TypeVar("T")


def fixed_groups(items: Sequence[T], size: int) -> list[tuple[T, ...]]:
    return [tuple(items[i:i + size]) for i in range(0, len(items), size)]


def group_audio_s(slots: int, max_chunk_s: float, workers: int = 1) -> float:
    """The audio a group holds at least: an hour, or QUEUE_FILL batches of `slots` segments of `max_chunk_s`
    shared out over `workers` (Ray model actors, each taking whole groups: fewer, fuller groups would leave
    some of them idle)."""
    return max(GROUP_AUDIO_S, QUEUE_FILL * slots * max_chunk_s / max(1, workers))


def auto_groups(items: Sequence[T], seconds_of: Callable[[T], float],
                least_audio_s: float = GROUP_AUDIO_S) -> list[tuple[T, ...]]:
    """`items` in order, in groups of at least MIN_GROUP_RECORDINGS and `least_audio_s` of audio (the last may
    hold less), at most MAX_GROUP_RECORDINGS. `seconds_of` is asked only while a group is short of audio."""
    groups: list[tuple[T, ...]] = []
    group: list[T] = []
    audio_s = 0.0
    for item in items:
        group.append(item)
        if audio_s < least_audio_s:
            audio_s += seconds_of(item)
        full = len(group) >= MIN_GROUP_RECORDINGS and audio_s >= least_audio_s
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
            from .decode import AudioFile

            try:
                self._seconds[path] = float(AudioFile(path).duration_hint_s or 0.0)
            except Exception:  # noqa: BLE001 - any reason is the file's, and its error row says it
                self._seconds[path] = 0.0
        return self._seconds[path]
