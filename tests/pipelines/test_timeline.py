"""Times count from a recording's first audio sample, whatever timestamps its container starts at."""

import subprocess

import numpy as np
import pytest

from omni_caption.pipelines import AudioFile, SileroVad
from omni_caption.pipelines.diarize import read_whole


@pytest.fixture(scope="module")
def late_starting_copies(speech_with_known_pauses, tmp_path_factory):
    """The espeak meeting as MPEG-TS stamped from 600 s (a broadcast capture) and as mp3 (encoder delay)."""
    wav, _speech, _pauses = speech_with_known_pauses
    folder = tmp_path_factory.mktemp("late")
    ts, mp3 = folder / "capture.ts", folder / "meeting.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(wav), "-c:a", "aac", "-output_ts_offset", "600",
                    str(ts)], check=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(wav), str(mp3)], check=True)
    start = AudioFile(ts)._decoder.metadata.begin_stream_seconds
    assert start > 600  # the container really stamps its audio from 600 s on
    return ts, mp3


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0


@pytest.mark.parametrize("copy", [0, 1], ids=["mpeg-ts-from-600s", "mp3"])
def test_speech_is_found_and_read_at_its_time_from_the_first_sample(speech_with_known_pauses, late_starting_copies,
                                                                    copy):
    _wav, speech, pauses = speech_with_known_pauses
    audio = AudioFile(late_starting_copies[copy])
    vad = SileroVad().analyse(audio.blocks())
    assert vad.duration_s == pytest.approx(speech[-1][1], abs=0.15)
    assert vad.regions[0].start_s == pytest.approx(speech[0][0], abs=0.15)
    assert all(region.end_s <= vad.duration_s for region in vad.regions)
    # Reading by those times gives that audio: the sentences are loud, the pauses between them quiet.
    spoken = [rms(audio.read(s0 + 0.1, s1 - 0.1)) for s0, s1 in speech]
    silent = [rms(audio.read(p0 + 0.1, p1 - 0.1)) for p0, p1 in pauses]
    assert min(spoken) > 20 * max(silent)
    whole = read_whole(AudioFile(late_starting_copies[copy]))
    assert len(whole) / 16000 == pytest.approx(vad.duration_s, abs=0.01)
