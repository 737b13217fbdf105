"""Segmentation arithmetic: speech regions -> utterance windows (1-8 s) -> caption chunks (<= 30 s).

Pure functions over times in seconds, so they are tested with Hypothesis and
reused unchanged by every engine. Cuts fall only in pauses; a speech run longer
than the window limit is cut at its quietest frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np



@dataclass(frozen=True)
class TimeSpan:
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class SegmentationOptions:
    min_window_s: float = 1.0
    max_window_s: float = 8.0
    max_chunk_s: float = 30.0
    # Pauses up to this long stay inside a window (like a comma); longer ones end it.
    merge_gap_s: float = 1.0
    # At utterance granularity, non-speech stretches at least this long get their own rows.
    min_gap_segment_s: float = 2.0

    def __post_init__(self):
        # Every span longer than a window holds a pause, so chunks a little longer than
        # the longest window can always end in a pause.
        if self.max_chunk_s < self.max_window_s + 2:
            raise ValueError(f"max chunk ({self.max_chunk_s} s) must be at least {self.max_window_s + 2} s")


@dataclass(frozen=True)
class Segment:
    """One row's time span, with the share of it VAD heard as speech."""

    span: TimeSpan
    speech_ratio: float
    windows: tuple[TimeSpan, ...] = ()  # utterance windows inside (for AuT pause windows)
    peak: float | None = None  # its loudest |sample| (of the 32 ms frames it touches); None: not measured

    @property
    def start_s(self) -> float:
        return self.span.start_s

    @property
    def end_s(self) -> float:
        return self.span.end_s


def split_long_runs(regions: list[TimeSpan], frame_energy: np.ndarray, frame_s: float,
                    max_s: float, min_s: float) -> list[TimeSpan]:
    """Cut every region longer than `max_s` at its quietest frame, keeping pieces >= `min_s`."""
    out: list[TimeSpan] = []
    for region in regions:
        start, end = region.start_s, region.end_s
        while end - start > max_s:
            lo, hi = start + min_s, min(start + max_s, end - min_s)
            cut = _quietest_point(frame_energy, frame_s, lo, hi) if hi > lo else start + max_s
            out.append(TimeSpan(start, cut))
            start = cut
        out.append(TimeSpan(start, end))
    return out


def _quietest_point(frame_energy: np.ndarray, frame_s: float, lo: float, hi: float) -> float:
    first, last = int(np.ceil(lo / frame_s)), int(np.floor(hi / frame_s))
    if last <= first or first >= len(frame_energy):
        return (lo + hi) / 2
    window = frame_energy[first:min(last, len(frame_energy))]
    return (first + int(np.argmin(window)) + 0.5) * frame_s


def utterance_windows(regions: list[TimeSpan], duration_s: float, frame_energy: np.ndarray, frame_s: float,
                      options: SegmentationOptions = SegmentationOptions()) -> list[TimeSpan]:
    """Group speech regions into windows of 1-8 s whose edges lie in pauses."""
    pieces = split_long_runs(regions, frame_energy, frame_s, options.max_window_s, options.min_window_s / 2)
    windows: list[list[float]] = []
    for piece in pieces:
        if windows:
            current = windows[-1]
            gap = piece.start_s - current[1]
            fits = piece.end_s - current[0] <= options.max_window_s
            too_short = current[1] - current[0] < options.min_window_s
            if fits and (gap <= options.merge_gap_s or too_short):
                current[1] = piece.end_s
                continue
        windows.append([piece.start_s, piece.end_s])
    return _pad_short_windows(windows, duration_s, options)


def _pad_short_windows(windows: list[list[float]], duration_s: float,
                       options: SegmentationOptions) -> list[TimeSpan]:
    """Grow windows under the minimum into the silence around them (the model needs >= 1 s)."""
    out: list[TimeSpan] = []
    for i, (start, end) in enumerate(windows):
        lower = out[-1].end_s if out else 0.0
        upper = windows[i + 1][0] if i + 1 < len(windows) else duration_s
        missing = options.min_window_s - (end - start)
        if missing > 0:
            grow_left = min(missing / 2, start - lower)
            grow_right = min(missing - grow_left, upper - end)
            grow_left = min(missing - grow_right, start - lower)
            start, end = start - grow_left, end + grow_right
        out.append(TimeSpan(start, end))
    return out


def cut_points(windows: list[TimeSpan], duration_s: float) -> list[tuple[float, float]]:
    """Intervals where a chunk may end: every pause between windows, and the silence at the edges.

    Windows that touch (a long speech run cut at its quietest frame) give a
    zero-length interval: that forced cut is a legitimate chunk edge too.
    """
    gaps, position = [], 0.0
    for window in windows:
        if window.start_s > position or (gaps or position > 0) and window.start_s == position:
            gaps.append((position, window.start_s))
        position = max(position, window.end_s)
    if duration_s > position:
        gaps.append((position, duration_s))
    return gaps


def caption_chunks(windows: list[TimeSpan], duration_s: float,
                   options: SegmentationOptions = SegmentationOptions()) -> list[TimeSpan]:
    """Tile [0, duration] with chunks <= max_chunk_s, ending in pauses (mid-pause where possible)."""
    if duration_s <= 0:
        return []
    gaps = cut_points(windows, duration_s)
    chunks: list[TimeSpan] = []
    start = 0.0
    while duration_s - start > options.max_chunk_s:
        limit = start + options.max_chunk_s
        end = None
        for g0, g1 in gaps:
            if g0 > limit:
                break
            if g1 <= start:
                continue
            if g1 <= limit:
                end = (max(g0, start) + g1) / 2  # the middle of the pause
            else:
                end = limit  # a long silence reaches past the limit: cut inside it
        if end is None or end <= start:
            end = limit  # no pause in reach: cannot happen while windows are shorter than the limit
        chunks.append(TimeSpan(start, end))
        start = end
    chunks.append(TimeSpan(start, duration_s))
    return chunks


def speech_ratio(span: TimeSpan, regions: list[TimeSpan]) -> float:
    if span.duration_s <= 0:
        return 0.0
    speech = sum(max(0.0, min(span.end_s, r.end_s) - max(span.start_s, r.start_s)) for r in regions)
    return float(min(1.0, speech / span.duration_s))


def segments_for(granularity: str, regions: list[TimeSpan], windows: list[TimeSpan], duration_s: float,
                 options: SegmentationOptions = SegmentationOptions(),
                 peaks: tuple[np.ndarray, float] | None = None) -> list[Segment]:
    """The rows of one recording: caption chunks, or utterance windows plus long non-speech stretches; with
    `peaks` (the loudest |sample| of each frame, and the frame's length in seconds), each knows its peak."""
    if granularity == "chunk":
        spans = caption_chunks(windows, duration_s, options)
    elif granularity == "utterance":
        spans = list(windows)
        for g0, g1 in cut_points(windows, duration_s):
            if g1 - g0 >= options.min_gap_segment_s:
                stretch = caption_chunks([], g1 - g0, options)
                spans += [TimeSpan(g0 + s.start_s, g0 + s.end_s) for s in stretch]
        spans.sort(key=lambda s: s.start_s)
        if not spans and duration_s > 0:
            # No speech and no stretch long enough for a row of its own: the recording still gets one row,
            # else it would leave no trace in the dataset (a clip of a door shutting, a 1 s silence).
            spans = [TimeSpan(0.0, duration_s)]
    else:
        raise ValueError(f"granularity must be 'chunk' or 'utterance', not {granularity!r}")
    return [Segment(span, speech_ratio(span, regions),
                    tuple(w for w in windows if w.start_s >= span.start_s - 1e-9 and w.end_s <= span.end_s + 1e-9),
                    None if peaks is None else _peak(span, *peaks))
            for span in spans]


def _peak(span: TimeSpan, frame_peak: np.ndarray, frame_s: float) -> float:
    """The loudest of the frames the span touches, whole: never quieter than the span itself."""
    first, last = int(span.start_s / frame_s), math.ceil(span.end_s / frame_s - 1e-9)
    frames = frame_peak[first:max(last, first + 1)]
    return float(frames.max()) if frames.size else 0.0
