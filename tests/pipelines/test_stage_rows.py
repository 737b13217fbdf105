"""Rows of digital silence are written without asking a model to hear them."""

import numpy as np
import pytest
import soundfile

from omni_caption.pipelines import RunOptions, run_corpus
from omni_caption.pipelines.stage_rows import SILENT_PEAK, is_digital_silence
from omni_caption.schemas import SILENT_SOURCE_FLAG, read_dataset


@pytest.mark.parametrize("samples, silent", [
    (np.zeros(16000, np.float32), True),
    (np.random.default_rng(0).choice([-1, 0, 1], 16000).astype(np.float32) / 32768, True),  # 16-bit dither
    (np.full(16000, 2 * SILENT_PEAK, np.float32), False),
    (np.random.default_rng(0).normal(0, 10 ** (-60 / 20), 16000).astype(np.float32), False),  # a quiet room
    (np.zeros(0, np.float32), False),  # no audio is not silence: the processor's own error says so
])
def test_digital_silence_is_what_no_one_can_hear(samples, silent):
    assert is_digital_silence(samples) is silent


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
