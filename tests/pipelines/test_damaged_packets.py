"""A damaged stretch inside a file (a bad sector, a dropped piece of a download) is skipped, not the end of it."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from omni_caption.pipelines import SAMPLE_RATE, AudioFile, RunOptions, run_corpus
from tests.conftest import ffmpeg


def _noise(path, seconds: float = 30.0):
    # Noise, not a tone: a shift of the audio shows as a clear offset, not a whole number of periods.
    codec = {".mp3": ("libmp3lame",), ".m4a": ("aac",)}[path.suffix]
    ffmpeg("-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:r=44100:a=0.3:seed=7", "-c:a", *codec,
           "-b:a", "128k", str(path))
    return path


def _damaged_copy(clean, path, at: float = 1 / 3, length: int = 600):
    data = bytearray(clean.read_bytes())
    start = int(len(data) * at)
    data[start:start + length] = bytes(length)  # zeroed, as a bad sector reads
    path.write_bytes(bytes(data))
    return path


def _samples(audio: AudioFile) -> np.ndarray:
    return np.concatenate([block for _start_s, block in audio.blocks()])


def _offset(reference: np.ndarray, samples: np.ndarray, at_s: float, search: int = 800) -> int:
    """By how many samples `samples` lags `reference` around `at_s`."""
    start, width = int(at_s * SAMPLE_RATE), SAMPLE_RATE // 4
    window = reference[start:start + width]
    return min(range(-search, search + 1),
               key=lambda o: float(np.abs(samples[start + o:start + o + width] - window).sum()))


@pytest.mark.parametrize("ext,drift", [(".m4a", 40), (".mp3", 1600)])
def test_a_damaged_stretch_is_skipped_and_what_follows_keeps_its_time(tmp_path, ext, drift):
    clean = _noise(tmp_path / f"clean{ext}")
    reference = _samples(AudioFile(clean))
    audio = AudioFile(_damaged_copy(clean, tmp_path / f"damaged{ext}"))
    samples = _samples(audio)
    # torchcodec stopped at the damage: 10 s of the 30, and the rest of the file taken as missing.
    assert abs(len(samples) - len(reference)) < 0.1 * SAMPLE_RATE and audio.ends_early is None
    (start, end), = audio.damaged
    assert 9.0 < start < 11.0 and 0.02 < end - start < 0.1  # a lost MP3 or AAC frame or two, silence now
    assert _offset(reference, samples, 5.0) == 0
    # The lost packet's time is silence, so later audio sits where it does in the file: in MP4, by its
    # timestamps, within the resampler's 1-2 ms; a raw MP3's demuxer counts one lost frame of the three.
    assert all(abs(_offset(reference, samples, at_s, 3000)) <= drift for at_s in (20.0, 28.0))
    assert not samples[int(start * SAMPLE_RATE):int(end * SAMPLE_RATE)].any()


def test_a_run_reads_past_the_damage_flags_its_row_and_says_so_once(tmp_path, cache_dir):
    folder = tmp_path / "recs"
    folder.mkdir()
    clean = _noise(tmp_path / "clean.mp3", seconds=40.0)
    _damaged_copy(clean, folder / "damaged.mp3", at=0.6)
    _damaged_copy(clean, folder / "twice.mp3", at=0.6, length=300)
    _damaged_copy(folder / "twice.mp3", folder / "twice.mp3", at=0.62, length=300)
    out = tmp_path / "x.parquet"
    summary = run_corpus([folder], out, RunOptions(model="tiny-random", max_new_tokens=2, cache_dir=cache_dir,
                                                   device="cpu", max_chunk_s=10.0), show_progress=False)
    assert (summary.ok, summary.errors) == (2, 0)
    assert sorted(line.split(":")[0] for line in summary.warning_lines) == ["damaged.mp3", "twice.mp3"]
    assert "damaged audio (skipped packets, or NaN or infinite samples) is silence now" in summary.warning_lines[0]
    rows = duckdb.sql(f"SELECT source_path, start_s, end_s, recording_duration_s, flags FROM '{out}' "
                      f"ORDER BY 1, 2").fetchall()
    for name in ("damaged.mp3", "twice.mp3"):
        mine = [r for r in rows if r[0] == name]
        assert abs(mine[0][3] - 40.0) < 0.1  # the whole file, not the 24 s before the damage
        flagged = [r for r in mine if "damaged:source" in r[4]]
        assert flagged and all(r[1] <= 24.5 and r[2] >= 23.5 for r in flagged), mine
        assert not any("truncated:source" in r[4] for r in mine)


def _float_wav(path, samples: np.ndarray):
    import soundfile as sf

    sf.write(path, samples.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    return path


def test_nan_and_infinite_samples_are_silence_and_their_span_is_kept(tmp_path):
    samples = (np.random.default_rng(5).standard_normal(SAMPLE_RATE * 20) * 0.1).astype(np.float32)
    samples[SAMPLE_RATE * 5:SAMPLE_RATE * 5 + 400] = np.nan  # a faulty effect chain's burst
    samples[SAMPLE_RATE * 5 + 8000] = np.inf  # half a second on: the same burst
    samples[SAMPLE_RATE * 15] = -np.inf
    audio = AudioFile(_float_wav(tmp_path / "glitchy.wav", samples))
    decoded = _samples(audio)
    assert len(decoded) == len(samples) and np.isfinite(decoded).all()
    assert not decoded[SAMPLE_RATE * 5:SAMPLE_RATE * 5 + 400].any()
    assert np.array_equal(decoded[:SAMPLE_RATE * 5], samples[:SAMPLE_RATE * 5])
    assert [pytest.approx(span) for span in audio.damaged] == [(5.0, 5.0 + 8001 / SAMPLE_RATE),
                                                               (15.0, 15.0 + 1 / SAMPLE_RATE)]
    assert np.isfinite(audio.read(4.0, 6.0)).all()  # spans read from the source are cleaned too


def test_a_file_mostly_of_nan_samples_is_an_error_row(tmp_path):
    from omni_caption.pipelines import DecodeError

    samples = np.full(SAMPLE_RATE * 4, np.nan, dtype=np.float32)
    samples[:SAMPLE_RATE] = 0.1
    with pytest.raises(DecodeError, match=r"^decoded audio is mostly NaN or infinite samples \(75%\)$"):
        _samples(AudioFile(_float_wav(tmp_path / "broken.wav", samples)))
