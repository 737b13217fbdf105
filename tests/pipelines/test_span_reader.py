"""Spans by recording time: the same samples as one whole decode, in any order, from one pass when in order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omni_caption.pipelines import SAMPLE_RATE, AudioFile, decode_audio
from omni_caption.pipelines.span_reader import DecodedAudioCache, ForwardSpans
from tests.conftest import ffmpeg

SECONDS = 75.0


@pytest.fixture(scope="module", params=["flac", "opus", "m4a"])
def recording(request, tmp_path_factory):
    """A rising chirp (a shift of one sample shows) at 44.1 kHz, so every read resamples; with its whole decode."""
    path = tmp_path_factory.mktemp("spans") / f"chirp.{request.param}"
    ffmpeg("-f", "lavfi", "-i", f"aevalsrc=0.3*sin(2*PI*(200+20*t)*t):s=44100:d={SECONDS}", str(path))
    audio = AudioFile(path)
    whole = decode_audio(path).samples
    # A sequential pass ends without the resampler's last few samples (about 1 ms) that a whole decode flushes.
    passed = sum(len(block) for _, block in audio.blocks())
    assert 0 <= len(whole) - passed <= 64
    return path, whole[:passed]


def whole_span(whole: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    """Times count from the first sample: the span of the whole decode by index."""
    first = min(max(0, round(start_s * SAMPLE_RATE)), len(whole))
    return whole[first:min(max(first, round(end_s * SAMPLE_RATE)), len(whole))]


def test_spans_in_time_order_are_the_whole_decode_from_one_pass(recording):
    path, whole = recording
    reader = ForwardSpans(AudioFile(path))
    edges = np.arange(0.0, SECONDS + 1, 29.37)
    for start, end in zip(edges, edges[1:]):
        np.testing.assert_array_equal(reader.read(start, end), whole_span(whole, start, end))
    np.testing.assert_array_equal(reader.read(70.0, 90.0), whole[round(70.0 * SAMPLE_RATE):])  # to the end
    assert reader.passes == 1


def test_a_span_before_the_last_starts_a_new_pass_and_is_still_exact(recording):
    path, whole = recording
    reader = ForwardSpans(AudioFile(path))
    for start, end in [(40.0, 60.0), (45.0, 50.0), (10.0, 12.5), (11.0, 30.0)]:  # overlap, back, overlap
        np.testing.assert_array_equal(reader.read(start, end), whole_span(whole, start, end))
    assert reader.passes == 2  # only (10, 12.5) went behind what the pass had kept


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.floats(0.0, SECONDS), st.floats(0.0, 31.0)), min_size=1, max_size=6))
def test_any_spans_in_any_order_are_the_whole_decode(recording, spans):
    path, whole = recording
    reader = ForwardSpans(AudioFile(path))
    backward = 0
    kept_from = None
    for start, length in spans:
        if kept_from is not None and round(start * SAMPLE_RATE) < kept_from:
            backward += 1
        np.testing.assert_array_equal(reader.read(start, start + length),
                                      whole_span(whole, start, start + length))
        kept_from = max(0, min(round(start * SAMPLE_RATE), len(whole)))
    assert reader.passes == 1 + backward


def test_audio_file_read_uses_the_forward_reader(recording):
    path, whole = recording
    audio = AudioFile(path)
    for start in (5.0, 35.0, 65.0):
        np.testing.assert_array_equal(audio.read(start, start + 10), whole_span(whole, start, start + 10))
    assert audio._spans.passes == 1


def test_the_range_api_is_why(recording):
    """torchcodec's range reads after an earlier read are shifted by a few ms: what the forward reader avoids."""
    path, whole = recording
    from torchcodec.decoders import AudioDecoder

    decoder = AudioDecoder(str(path), sample_rate=SAMPLE_RATE, num_channels=1)
    decoder.get_samples_played_in_range(0.0, 29.37)
    later = decoder.get_samples_played_in_range(29.37, 58.74).data.mean(dim=0).numpy()
    assert not np.array_equal(later, whole_span(whole, 29.37, 58.74))


def test_the_cache_gives_any_span_in_any_order_and_frees_its_file(recording, tmp_path):
    path, whole = recording
    cache = DecodedAudioCache(tmp_path)
    for _start_s, block in AudioFile(path).blocks(block_samples=512 * 100):
        cache.append(block)
    assert cache.finished() is cache
    assert cache.samples == len(whole) and cache.bytes_on_disk() == 4 * len(whole)
    assert list(tmp_path.iterdir()) == []  # no name: nothing is left behind, even if the process is killed
    for start, end in [(60.0, 75.0), (0.0, 3.0), (30.5, 59.9), (74.0, 99.0), (80.0, 81.0)]:
        np.testing.assert_array_equal(cache.read(start, end), whole_span(whole, start, end))
    cache.close()
    assert cache.closed
