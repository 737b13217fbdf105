"""A segment that cannot be read or tokenised fails its own recording, never the others in its batch."""

import duckdb
import numpy as np
import pytest
import soundfile as sf

from omni_caption.pipelines import RunOptions, run_corpus
from omni_caption.pipelines import stages
from omni_caption.pipelines.decode import DecodeError
from omni_caption.pipelines.segmenter import Recording
from tests.conftest import EXAMPLES

BROKEN = "weekly_planning.opus"


def run(tmp_path, cache_dir, inputs=(EXAMPLES / "meetings", EXAMPLES / "field")):
    out = tmp_path / "out.parquet"
    # One batch holds every segment of the three recordings, so their neighbours share it.
    summary = run_corpus(list(inputs), out,
                         RunOptions(tasks=("caption",), model="tiny-random", greedy=True, max_new_tokens=4,
                                    cache_dir=cache_dir, device="cpu", decoder="plain", batch_size=16),
                         show_progress=False)
    rows = duckdb.sql(f"SELECT source_path, status, error FROM '{out}' ORDER BY 1, start_s").fetchall()
    return summary, rows


def by_status(rows):
    return {path: {status for p, status, _ in rows if p == path} for path, _, _ in rows}


def test_a_file_that_breaks_mid_way_fails_alone_in_a_shared_batch(tmp_path, cache_dir, tiny_dir, monkeypatch):
    real_read = Recording.read
    batches_with_it = []

    def read(self, segment):
        if self.source.source_path == BROKEN:
            batches_with_it.append(segment)
            raise DecodeError("Invalid data found when processing input")
        return real_read(self, segment)

    monkeypatch.setattr(Recording, "read", read)
    summary, rows = run(tmp_path, cache_dir)
    assert batches_with_it and summary.errors == 1 and summary.ok == 2
    assert by_status(rows) == {BROKEN: {"error"}, "river_morning.flac": {"ok"}, "voice_memo.m4a": {"ok"}}
    assert [error for path, _, error in rows if path == BROKEN] == [
        "decoding failed mid-file: Invalid data found when processing input"]


@pytest.mark.parametrize("error", [RuntimeError("Padding size should be\nless than the corresponding input dimension"),
                                   IndexError("Padding size should be\nless than the corresponding input dimension")])
def test_a_clip_the_processor_refuses_fails_its_recording_alone(tmp_path, cache_dir, tiny_dir, monkeypatch, error):
    real_prepare = stages.prepare_rows
    refused = []

    def prepare(omni, audios, prompt):
        if not refused:  # the first clip tokenised: the batch's shortest segment
            refused.append(len(audios[0]))
            raise error
        return real_prepare(omni, audios, prompt)

    monkeypatch.setattr(stages, "prepare_rows", prepare)
    summary, rows = run(tmp_path, cache_dir)
    failed = [(path, error) for path, status, error in rows if status == "error"]
    assert summary.errors == 1 and summary.ok == 2 and len(failed) == 1
    assert "the model's processor cannot take the audio at " in failed[0][1]
    assert failed[0][1].endswith(f"({type(error).__name__}: Padding size should be less than the corresponding input "
                                 "dimension)")
    assert all(status == "ok" for path, status, _ in rows if path != failed[0][0])


def test_a_bug_in_tokenising_stops_the_run_instead_of_failing_every_recording(tmp_path, cache_dir, tiny_dir,
                                                                              monkeypatch):
    def prepare(omni, audios, prompt):
        raise TypeError("__call__() got an unexpected keyword argument 'audio'")  # a transformers API change

    monkeypatch.setattr(stages, "prepare_rows", prepare)
    with pytest.raises(TypeError, match="unexpected keyword"):
        run(tmp_path, cache_dir)


def test_a_recording_shorter_than_one_stft_frame_is_captioned(tmp_path, cache_dir, tiny_dir):
    """No mock: a 100-sample WAV (6 ms) stopped the whole run in the feature extractor's STFT."""
    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "click.wav", (0.5 * np.hanning(100)).astype(np.float32), 16000)
    sf.write(folder / "tone.wav", 0.3 * np.sin(2 * np.pi * 440 * np.arange(32000) / 16000), 16000)
    summary, rows = run(tmp_path, cache_dir, inputs=(folder,))
    assert summary.ok == 2 and summary.errors == 0
    assert by_status(rows) == {"click.wav": {"ok"}, "tone.wav": {"ok"}}
    end_s = duckdb.sql(f"SELECT end_s FROM '{tmp_path / 'out.parquet'}' WHERE source_path = 'click.wav'").fetchone()[0]
    assert end_s == pytest.approx(100 / 16000)
