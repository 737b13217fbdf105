import numpy as np
import pytest
import soundfile as sf

from omni_caption.pipelines.probe import probe_audio
from tests.conftest import make_tone


def test_wav_header(tmp_path):
    path = tmp_path / "x.wav"
    sf.write(path, np.zeros((22_050, 2), dtype="float32"), 22_050)
    info = probe_audio(path)
    assert (info.sampling_rate, info.num_samples, info.num_channels) == (22_050, 22_050, 2)


def test_m4a_goes_through_ffmpeg(tmp_path):
    # libsndfile cannot open m4a; torchcodec reads its header.
    info = probe_audio(make_tone(tmp_path / "x.m4a", seconds=2.0))
    assert info.sampling_rate == 44_100 and info.num_channels == 1
    assert info.duration_s == pytest.approx(2.0, abs=0.05)


def test_not_audio_raises(tmp_path):
    path = tmp_path / "x.mp3"
    path.write_text("not audio")
    with pytest.raises(Exception):
        probe_audio(path)
