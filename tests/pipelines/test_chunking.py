from hypothesis import given
from hypothesis import strategies as st

from omni_caption.pipelines import even_chunks

durations = st.floats(min_value=0.01, max_value=6 * 3600, allow_nan=False)
limits = st.floats(min_value=1.0, max_value=30.0, allow_nan=False)


@given(durations, limits)
def test_chunks_tile_the_recording(duration, limit):
    chunks = even_chunks(duration, limit)
    assert chunks[0].start_s == 0.0 and chunks[-1].end_s == duration
    for a, b in zip(chunks, chunks[1:]):
        assert a.end_s == b.start_s  # ordered, no gap, no overlap
    assert all(c.start_s < c.end_s for c in chunks)


@given(durations, limits)
def test_chunks_respect_the_limit_and_are_fewest(duration, limit):
    chunks = even_chunks(duration, limit)
    assert all(c.duration_s <= limit + 1e-6 for c in chunks)
    assert len(chunks) == 1 or duration / (len(chunks) - 1) > limit - 1e-6


def test_empty_recording_has_no_chunks():
    assert even_chunks(0.0) == []
