import json

import numpy as np
import pytest
import soundfile as sf

from omni_caption.schemas import SegmentRow
from omni_caption.schemas.export_nemo import export_nemo
from tests.schemas.sample_dataset import write_sample


@pytest.fixture
def audio_root(tmp_path):
    """a.wav of the sample dataset (45 s, 16 kHz, a tone rising each second); talks/b.mp3 is missing on purpose."""
    root = tmp_path / "audio"
    root.mkdir()
    seconds = np.repeat(np.arange(45), 16_000)
    sf.write(root / "a.wav", (0.01 * seconds).astype("float32"), 16_000)
    return root


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_segment_is_a_line_pointing_into_its_recording(tmp_path, audio_root):
    dataset = write_sample(tmp_path / "d.parquet")
    result = export_nemo(dataset, tmp_path / "manifest.json", [audio_root])
    assert result.skipped == [f"talks/b.mp3: not found under {audio_root}"]
    manifest = lines(tmp_path / "manifest.json")
    assert result.rows == len(manifest) == 3
    assert [(m["offset"], m["duration"]) for m in manifest] == [(0.0, 15.0), (15.0, 15.0), (30.0, 15.0)]
    assert {m["audio_filepath"] for m in manifest} == {str((audio_root / "a.wav").resolve())}
    # The transcript is the text, the caption where there is none; the rest of the row rides along.
    assert [m["text"] for m in manifest][:2] == ["Hey, stop barking!", "Birds sing in the morning."]
    assert manifest[0]["caption"].startswith("A dog barks") and "caption" not in manifest[1]
    assert manifest[2]["flags"] == ["repetition:transcript", "truncated:caption"] and manifest[2]["language"] == "English"
    # What a NeMo loader reads at the line's offset is that span of the recording (each second has its own level).
    with sf.SoundFile(manifest[1]["audio_filepath"]) as audio:
        audio.seek(int(manifest[1]["offset"] * audio.samplerate))
        span = audio.read(int(manifest[1]["duration"] * audio.samplerate))
    assert np.round(span[[0, -1]] / 0.01).tolist() == [15, 29]


def test_a_row_without_text_has_no_line(tmp_path, audio_root):
    sha = "cc" * 32
    rows = [SegmentRow("cc" * 8, "a.wav", sha, 45.0, 0, 0.0, 10.0, flags=("silent:source",)),
            SegmentRow("cc" * 8, "a.wav", sha, 45.0, 1, 10.0, 20.0, caption="A tone.")]
    result = export_nemo(write_sample(tmp_path / "d.parquet", rows), tmp_path / "m.json", [audio_root])
    assert [m["segment_index"] for m in lines(tmp_path / "m.json")] == [1] and result.rows == 1
