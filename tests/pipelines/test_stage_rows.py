"""Rows of digital silence are written without asking a model to hear them."""

import numpy as np
import pytest
import soundfile

from omni_caption.pipelines import RunOptions, run_corpus
from omni_caption.pipelines.segment import Segment, TimeSpan, segments_for
from omni_caption.pipelines.stage_rows import SILENT_PEAK, is_digital_silence
from omni_caption.pipelines.vad import FRAME
from omni_caption.schemas import SILENT_SOURCE_FLAG, read_dataset


def frame_peaks(samples: np.ndarray) -> np.ndarray:
    return np.abs(np.pad(samples, (0, -len(samples) % FRAME)).reshape(-1, FRAME)).max(axis=1)


@pytest.mark.parametrize("samples, silent", [
    (np.zeros(16000, np.float32), True),
    (np.random.default_rng(0).choice([-1, 0, 1], 16000).astype(np.float32) / 32768, True),  # 16-bit dither
    (np.full(16000, 2 * SILENT_PEAK, np.float32), False),
    (np.random.default_rng(0).normal(0, 10 ** (-60 / 20), 16000).astype(np.float32), False),  # a quiet room
])
def test_digital_silence_is_what_no_one_can_hear(samples, silent):
    (segment,) = segments_for("chunk", [], [], len(samples) / 16000, peaks=(frame_peaks(samples), FRAME / 16000))
    assert is_digital_silence(segment) is silent


def test_a_segment_is_as_loud_as_the_frames_it_touches_and_unmeasured_is_not_silent():
    samples = np.zeros(16000 * 4, np.float32)
    samples[16000 * 2 + 100] = 0.5  # one click, inside the frame that starts at 1.984 s
    peaks = (frame_peaks(samples), FRAME / 16000)
    near = segments_for("chunk", [], [], 2.0, peaks=peaks)[0]  # 0-2 s ends inside that frame: it counts
    assert near.peak == 0.5
    assert segments_for("chunk", [], [], 1.9, peaks=peaks)[0].peak == 0.0
    assert not is_digital_silence(Segment(TimeSpan(0.0, 1.0), 0.0))  # no peak measured: a model hears it


def test_a_muted_stretch_gets_rows_flagged_silent_with_no_text_and_is_not_redone(tmp_path, cache_dir, tiny_dir):
    """A muted microphone's 30 s of zeros was captioned by the model: GPU time for text made up from nothing."""
    rate = 16000
    audio = np.zeros(rate * 45, np.float32)  # chunks: 0-30 s of zeros, then 30-45 s with a tone at its end
    audio[rate * 35:] = 0.3 * np.sin(2 * np.pi * 440 * np.arange(rate * 10) / rate)
    folder = tmp_path / "in"
    folder.mkdir()
    soundfile.write(folder / "muted_then_tone.flac", audio, rate)
    out = tmp_path / "out.parquet"
    options = RunOptions(tasks=("caption", "transcript"), model="tiny-random", greedy=True, max_new_tokens=4,
                         cache_dir=cache_dir, device="cpu")
    run_corpus([folder], out, options, show_progress=False)
    table, _ = read_dataset(out)
    rows = sorted(table.drop_columns(["audio"]).to_pylist(), key=lambda r: r["segment_index"])
    assert [(r["start_s"], r["end_s"]) for r in rows] == [(0.0, 30.0), (30.0, 45.0)]
    muted, heard = rows
    assert muted["flags"] == [SILENT_SOURCE_FLAG] and muted["status"] == "ok"
    assert muted["caption"] is None and muted["transcript"] is None and muted["models"]["caption"] is None
    assert set(muted["config_hash"].split(",")) == set(heard["config_hash"].split(","))  # both tasks done
    assert SILENT_SOURCE_FLAG not in heard["flags"] and heard["models"]["caption"] is not None
    again = run_corpus([folder], out, options, show_progress=False)
    assert again.resumed == 1 and again.run_audio_s == 0


def test_a_silent_segment_takes_no_place_in_a_models_batch():
    """Batches are cut by count: a silent segment in one left the model a smaller call (emptier refill slots)."""
    from omni_caption.pipelines.stages import _by_duration

    loud, short_loud = Segment(TimeSpan(0.0, 5.0), 0.0, peak=0.5), Segment(TimeSpan(6.0, 7.0), 0.0, peak=0.1)
    silent = Segment(TimeSpan(5.0, 6.0), 0.0, peak=0.0)
    assert _by_duration([(None, 0, loud), (None, 1, silent), (None, 2, short_loud)]) == [2, 0]
