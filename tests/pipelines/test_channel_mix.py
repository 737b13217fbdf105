"""Stereo files whose channels cancel in a mono mix are heard through one channel, flagged and said so."""

import duckdb
import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from omni_caption.pipelines import SAMPLE_RATE, AudioFile, RunOptions, decode_audio, run_corpus
from omni_caption.pipelines.channel_mix import PROBE_S, cancelling_channel, probe_cancelling_channel
from omni_caption.schemas import ONE_CHANNEL_SOURCE_FLAG
from tests.conftest import EXAMPLES, ffmpeg


def _speech_at(path, rate: int = 48000) -> np.ndarray:
    """The example meeting (real espeak-ng speech), mono at `rate`."""
    ffmpeg("-i", EXAMPLES / "meetings" / "weekly_planning.opus", "-ac", "1", "-ar", str(rate), path)
    return sf.read(path, dtype="float32")[0]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), level=st.floats(0.01, 1.0), gain=st.floats(0.85, 0.99),
       inverted=st.integers(0, 1))
def test_only_channels_that_cancel_pick_one_and_it_is_the_loudest(seed, level, gain, inverted):
    signal = np.random.default_rng(seed).standard_normal(4000) * level
    pair = [signal, -gain * signal] if not inverted else [-gain * signal, signal]
    assert cancelling_channel(np.stack(pair)) == inverted  # the mix at (1 - gain) / 2 <= 7.5 % of the louder one
    assert cancelling_channel(np.stack([signal, -signal])) == 0  # equally loud: the first
    assert cancelling_channel(np.stack([signal, gain * signal])) is None  # in phase
    assert cancelling_channel(np.stack([signal, np.zeros_like(signal)])) is None  # one channel silent: -6 dB
    assert cancelling_channel(np.stack([signal, -0.5 * signal])) is None  # a mix at 25 %: quieter, still heard
    assert cancelling_channel(np.stack([signal * 1e-4, -signal * 1e-4])) is None  # both silence already
    assert cancelling_channel(signal[None, :]) is None and cancelling_channel(np.zeros((2, 0))) is None


@pytest.mark.parametrize("inverted_channel", [0, 1])
def test_an_inverted_pair_is_decoded_as_its_loudest_channel_everywhere(tmp_path, inverted_channel):
    """Mixed to mono, the pair was silence: every row `silent:source`, nothing heard."""
    speech = _speech_at(tmp_path / "mono.wav")
    pair = [speech, -0.9 * speech] if inverted_channel == 1 else [-0.9 * speech, speech]
    path = tmp_path / "inverted.wav"
    sf.write(path, np.stack(pair, axis=1), 48000, subtype="PCM_24")
    reference = np.concatenate([block for _start, block in AudioFile(tmp_path / "mono.wav").blocks()])
    audio = AudioFile(path)
    samples = np.concatenate([block for _start, block in audio.blocks()])
    heard = 1 - inverted_channel  # the louder one
    assert audio.heard_channel == heard and AudioFile(path).heard_channel == heard  # any opening of the file
    assert len(samples) == len(reference) and np.abs(samples - reference).max() < 1e-3  # the speech itself
    assert np.abs(audio.read(10.0, 12.0) - reference[10 * SAMPLE_RATE:12 * SAMPLE_RATE]).max() < 1e-3
    assert np.abs(decode_audio(path).samples[:len(reference)] - reference).max() < 1e-3


def test_the_probe_looks_past_a_silent_lead_in(tmp_path):
    """A recorder started a minute before anyone spoke: the opening seconds alone were silence on both channels."""
    speech = _speech_at(tmp_path / "mono.wav", rate=16000)
    lead_in = np.zeros(int((PROBE_S + 15) * 16000), dtype=np.float32)
    sf.write(tmp_path / "late.flac", np.stack([np.r_[lead_in, speech], -np.r_[lead_in, speech]], axis=1), 16000)
    assert probe_cancelling_channel(tmp_path / "late.flac", SAMPLE_RATE) == 0
    sf.write(tmp_path / "plain.flac", np.stack([np.r_[lead_in, speech], np.r_[lead_in, speech]], axis=1), 16000)
    assert probe_cancelling_channel(tmp_path / "plain.flac", SAMPLE_RATE) is None
    assert probe_cancelling_channel(tmp_path / "missing.flac", SAMPLE_RATE) is None  # the pass says why


def test_a_run_hears_the_inverted_pair_flags_its_rows_and_says_so(tmp_path, cache_dir, tiny_dir):
    speech = _speech_at(tmp_path / "mono.wav")
    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "inverted.wav", np.stack([speech, -speech], axis=1), 48000, subtype="PCM_24")
    sf.write(folder / "left_only.wav", np.stack([speech, np.zeros_like(speech)], axis=1), 48000, subtype="PCM_24")
    out = tmp_path / "x.parquet"
    summary = run_corpus([folder], out, RunOptions(model="tiny-random", max_new_tokens=2, cache_dir=cache_dir,
                                                   device="cpu"), show_progress=False)
    assert summary.ok == 2 and [line.split(":")[0] for line in summary.warning_lines] == ["inverted.wav"]
    assert "its channels cancel when mixed to mono" in summary.warning_lines[0]
    rows = duckdb.sql(f"SELECT source_path, speech_ratio, flags FROM '{out}' ORDER BY 1").fetchall()
    for name, flagged in (("inverted.wav", True), ("left_only.wav", False)):
        mine = [r for r in rows if r[0] == name]
        assert mine and all((ONE_CHANNEL_SOURCE_FLAG in r[2]) is flagged for r in mine)
        assert all("silent:source" not in r[2] and r[1] > 0.5 for r in mine)  # speech heard, not silence
