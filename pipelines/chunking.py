"""Time spans for caption chunks (simple even split; VAD-aware segmentation replaces it later)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class TimeSpan:
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def even_chunks(duration_s: float, max_chunk_s: float = 30.0) -> list[TimeSpan]:
    """Cover [0, duration_s] with the fewest equal chunks of at most `max_chunk_s`.

    Equal chunks rather than fixed 30 s ones: no near-empty tail chunk that the
    model would caption from a fraction of a second.
    """
    if max_chunk_s <= 0:
        raise ValueError("max_chunk_s must be positive")
    if duration_s <= 0:
        return []
    count = max(1, math.ceil(duration_s / max_chunk_s - 1e-9))
    edges = [duration_s * i / count for i in range(count + 1)]
    edges[-1] = duration_s
    return [TimeSpan(edges[i], edges[i + 1]) for i in range(count)]
