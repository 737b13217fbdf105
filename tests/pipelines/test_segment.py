"""Segmentation: Hypothesis properties of the time arithmetic, and real speech with known pauses."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omni_caption.pipelines import (AudioFile, SegmentationOptions, SileroVad, TimeSpan, caption_chunks,
                                    segments_for, utterance_windows)
from omni_caption.pipelines.vad import FRAME_S

OPTIONS = SegmentationOptions()


@st.composite
def speech_layouts(draw):
    """Sorted, disjoint speech regions inside a recording, plus per-frame energy."""
    duration = draw(st.floats(min_value=0.5, max_value=600))
    cuts = sorted(draw(st.lists(st.floats(min_value=0, max_value=duration), max_size=40)))
    regions = [TimeSpan(a, b) for a, b in zip(cuts[::2], cuts[1::2]) if b - a > 0.05]
    frames = int(np.ceil(duration / FRAME_S))
    energy = np.random.default_rng(draw(st.integers(0, 1000))).random(frames).astype(np.float32)
    return duration, regions, energy


@settings(max_examples=150, deadline=None)
@given(speech_layouts())
def test_windows_are_ordered_disjoint_bounded_and_cover_speech(layout):
    duration, regions, energy = layout
    windows = utterance_windows(regions, duration, energy, FRAME_S, OPTIONS)
    for a, b in zip(windows, windows[1:]):
        assert a.end_s <= b.start_s + 1e-9
    for w in windows:
        assert 0 <= w.start_s < w.end_s <= duration + 1e-9
        assert w.duration_s <= OPTIONS.max_window_s + 1e-6
    covered = sum(min(w.end_s, r.end_s) - max(w.start_s, r.start_s)
                  for r in regions for w in windows if min(w.end_s, r.end_s) > max(w.start_s, r.start_s))
    assert covered == pytest.approx(sum(r.duration_s for r in regions), abs=1e-6)


@settings(max_examples=150, deadline=None)
@given(speech_layouts(), st.floats(min_value=10.0, max_value=30.0))
def test_chunks_tile_the_file_within_the_limit(layout, limit):
    duration, regions, energy = layout
    options = SegmentationOptions(max_chunk_s=limit)
    windows = utterance_windows(regions, duration, energy, FRAME_S, options)
    chunks = caption_chunks(windows, duration, options)
    assert chunks[0].start_s == 0 and chunks[-1].end_s == duration
    for a, b in zip(chunks, chunks[1:]):
        assert a.end_s == b.start_s
    assert all(0 < c.duration_s <= limit + 1e-6 for c in chunks)
    # A chunk edge never cuts through an utterance window.
    for edge in [c.end_s for c in chunks[:-1]]:
        assert not any(w.start_s + 1e-9 < edge < w.end_s - 1e-9 for w in windows)


@settings(max_examples=100, deadline=None)
@given(speech_layouts(), st.sampled_from(["chunk", "utterance"]))
def test_segments_have_valid_speech_ratio(layout, granularity):
    duration, regions, energy = layout
    windows = utterance_windows(regions, duration, energy, FRAME_S, OPTIONS)
    segments = segments_for(granularity, regions, windows, duration, OPTIONS)
    starts = [s.start_s for s in segments]
    assert segments, "every recording gets at least one row"
    assert starts == sorted(starts)
    assert all(0.0 <= s.speech_ratio <= 1.0 for s in segments)


@pytest.mark.parametrize("duration", [0.05, 1.5, 1.999])
def test_a_short_recording_without_speech_is_one_utterance_row(duration):
    energy = np.zeros(int(np.ceil(duration / FRAME_S)), dtype=np.float32)
    (only,) = segments_for("utterance", [], [], duration, OPTIONS)
    assert (only.span.start_s, only.span.end_s, only.speech_ratio, only.windows) == (0.0, duration, 0.0, ())
    assert segments_for("chunk", [], utterance_windows([], duration, energy, FRAME_S, OPTIONS), duration,
                        OPTIONS)[0].span == only.span


def test_long_speech_run_is_cut_at_its_quietest_frame():
    energy = np.ones(int(20 / FRAME_S), dtype=np.float32)
    quiet = int(6.0 / FRAME_S)
    energy[quiet] = 0.0
    windows = utterance_windows([TimeSpan(0.0, 14.0)], 20.0, energy, FRAME_S, OPTIONS)
    assert windows[0].end_s == pytest.approx((quiet + 0.5) * FRAME_S)
    assert all(w.duration_s <= 8 for w in windows)


def test_long_silence_still_gets_chunks_with_low_speech_ratio():
    regions = [TimeSpan(0.0, 3.0), TimeSpan(100.0, 103.0)]
    energy = np.ones(int(104 / FRAME_S), dtype=np.float32)
    windows = utterance_windows(regions, 104.0, energy, FRAME_S, OPTIONS)
    chunks = segments_for("chunk", regions, windows, 104.0, OPTIONS)
    assert sum(c.span.duration_s for c in chunks) == pytest.approx(104.0)
    assert any(c.speech_ratio == 0.0 for c in chunks)
    utterances = segments_for("utterance", regions, windows, 104.0, OPTIONS)
    assert [round(s.speech_ratio, 2) for s in utterances][0] == 1.0
    assert any(s.speech_ratio == 0.0 and s.span.duration_s > 2 for s in utterances)


def test_real_speech_cuts_fall_in_known_pauses(speech_with_known_pauses):
    path, speech, pauses = speech_with_known_pauses
    vad = SileroVad().analyse(AudioFile(path).blocks())
    windows = utterance_windows(vad.regions, vad.duration_s, vad.frame_energy, FRAME_S, OPTIONS)
    cuts = [(a.end_s, b.start_s) for a, b in zip(windows, windows[1:])]
    tolerance = 0.15
    inside = [any(p0 - tolerance <= end and start <= p1 + tolerance and end <= p1 + tolerance
                  and start >= p0 - tolerance for p0, p1 in pauses) for end, start in cuts]
    assert len(cuts) >= 5
    assert sum(inside) / len(inside) >= 0.95, (list(zip(cuts, inside)), pauses, vad.regions)
    covered = sum(max(0.0, min(w.end_s, s1) - max(w.start_s, s0)) for s0, s1 in speech for w in windows)
    assert covered / sum(s1 - s0 for s0, s1 in speech) >= 0.95
    assert all(1.0 <= w.duration_s <= 8.0 for w in windows[:-1])
    chunks = caption_chunks(windows, vad.duration_s, OPTIONS)
    assert all(c.duration_s <= 30 for c in chunks) and len(chunks) >= 2
    for chunk in chunks[:-1]:
        assert any(p0 - tolerance <= chunk.end_s <= p1 + tolerance for p0, p1 in pauses)
