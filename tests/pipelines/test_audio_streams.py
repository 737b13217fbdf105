"""Files with more than one audio stream: the default one is heard, and the rows and the run say so."""

import numpy as np
import pytest

from omni_caption.pipelines import SAMPLE_RATE, AudioFile, decode_audio, run_corpus
from omni_caption.schemas import ONE_STREAM_SOURCE_FLAG
from tests.conftest import ffmpeg
from tests.pipelines.run_helpers import rows_of, tiny_run_options


def _tracks(path, *freqs: int, default: int = 0, video: bool = False):
    """A file with one audio stream per frequency, stream `default` marked default (as OBS marks track 1)."""
    inputs = [arg for freq in freqs for arg in ("-f", "lavfi", "-i", f"sine=frequency={freq}:duration=3")]
    if video:
        inputs += ["-f", "lavfi", "-i", "testsrc=size=32x32:rate=5:duration=3"]
    maps = [arg for index in range(len(freqs) + video) for arg in ("-map", str(index))]
    marks = [arg for index in range(len(freqs)) for arg in (f"-disposition:a:{index}", "default" if index == default else "0")]
    ffmpeg(*inputs, *maps, *marks, "-c:a", "flac", str(path))
    return path


def _loudest_hz(samples: np.ndarray) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(samples[:SAMPLE_RATE]))))  # over one second: bins are 1 Hz apart


@pytest.mark.parametrize(("freqs", "video", "others"), [((300,), False, 0), ((300,), True, 0), ((300, 900), False, 1),
                                                        ((300, 600, 900), True, 2)])
def test_the_audio_streams_besides_the_default_one_are_counted_and_video_is_not(tmp_path, freqs, video, others):
    assert AudioFile(_tracks(tmp_path / "take.mkv", *freqs, video=video)).other_audio_streams == others


def test_the_stream_heard_is_the_one_marked_default_not_the_first(tmp_path):
    path = _tracks(tmp_path / "dub.mkv", 300, 900, default=1)
    assert _loudest_hz(decode_audio(path).samples) == pytest.approx(900, abs=5)


def test_a_run_flags_every_row_of_a_multi_track_file_and_says_its_other_streams_were_not_heard(tmp_path, cache_dir,
                                                                                              tiny_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    _tracks(folder / "obs_session.mkv", 300, 900)
    _tracks(folder / "single.mkv", 300)
    summary = run_corpus([folder], tmp_path / "x.parquet", tiny_run_options(cache_dir), show_progress=False)
    assert summary.ok == 2
    assert [line.split(":")[0] for line in summary.warning_lines] == ["obs_session.mkv"]
    assert "its default stream alone was heard" in summary.warning_lines[0]
    for row in rows_of(tmp_path / "x.parquet"):
        assert (ONE_STREAM_SOURCE_FLAG in row["flags"]) is (row["source_path"] == "obs_session.mkv")
