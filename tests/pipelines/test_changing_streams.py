"""Streams that change channels or sample rate partway: MP3s joined end to end, as podcasts and radio captures are."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from omni_caption.pipelines import SAMPLE_RATE, AudioFile, DecodeError, decode_audio
from omni_caption.pipelines.changing_streams import FfmpegFrames, stream_changes
from omni_caption.pipelines.decoded_frames import DecodedFrames
from tests.conftest import ffmpeg, make_tone


def _mp3_part(path: Path, freq: int, rate: int, channels: int, seconds: float = 5.0) -> bytes:
    # No ID3 tag or Xing frame: joined with `cat`, the parts make one stream of MP3 frames.
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate={rate}:duration={seconds}", "-ac", str(channels),
           "-c:a", "libmp3lame", "-write_xing", "0", "-id3v2_version", "0", str(path))
    return path.read_bytes()


def _joined(tmp_path: Path, name: str, first: tuple[int, int], second: tuple[int, int]) -> Path:
    """A 300 Hz part at first = (rate, channels), then a 500 Hz part at second."""
    joined = tmp_path / name
    joined.write_bytes(_mp3_part(tmp_path / "a.mp3", 300, *first) + _mp3_part(tmp_path / "b.mp3", 500, *second))
    return joined


def _frequency(samples: np.ndarray) -> float:
    return float(np.count_nonzero(np.diff(np.signbit(samples)))) / 2 / (len(samples) / SAMPLE_RATE)


def test_a_stream_whose_channels_change_is_decoded_whole_in_a_process_that_lives(tmp_path):
    path = _joined(tmp_path, "switch.mp3", (44100, 2), (44100, 1))
    # torchcodec's resampler, set up for two channels, crashed the process at the first mono frame (SIGSEGV):
    # the whole run died, and its rerun died on the same file.
    code = ("import sys; from omni_caption.pipelines import AudioFile; a = AudioFile(sys.argv[1]); "
            "print(sum(len(b) for _, b in a.blocks()), a.command_reason)")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    samples, changes = done.stdout.split(" ", 1)
    assert abs(int(samples) / SAMPLE_RATE - 10.0) < 0.2
    assert changes.strip() == "its channels change from 2 to 1 at 5.0 s"


def test_a_stream_whose_rate_changes_keeps_its_length_and_pitch(tmp_path):
    path = _joined(tmp_path, "rate.mp3", (44100, 1), (22050, 1))
    audio = AudioFile(path)
    assert audio.command_reason == "its sample rate changes from 44100 to 22050 Hz at 5.0 s"
    assert isinstance(audio.frames(), FfmpegFrames)
    total = sum(len(block) for _start_s, block in audio.blocks())
    assert abs(total / SAMPLE_RATE - 10.0) < 0.2  # was 7.6 s: the 22.05 kHz part came out at twice the speed
    assert audio.ends_early is None
    assert abs(_frequency(audio.read(1.0, 3.0)) - 300) < 10
    assert abs(_frequency(audio.read(7.0, 9.0)) - 500) < 10  # was about 1000 Hz
    whole = decode_audio(path).samples
    assert len(whole) == total and abs(_frequency(whole[8 * SAMPLE_RATE:9 * SAMPLE_RATE]) - 500) < 10


def test_two_ogg_vorbis_streams_joined_are_decoded_whole(tmp_path):
    parts = []
    for name, freq, rate, channels in (("a.ogg", 300, 44100, 2), ("b.ogg", 500, 22050, 1)):
        ffmpeg("-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate={rate}:duration=5", "-ac", str(channels),
               "-c:a", "libvorbis", str(tmp_path / name))
        parts.append((tmp_path / name).read_bytes())
    (tmp_path / "chained.ogg").write_bytes(b"".join(parts))  # an Icecast capture is such a chain
    audio = AudioFile(tmp_path / "chained.ogg")
    assert audio.command_reason is not None and isinstance(audio.frames(), FfmpegFrames)
    assert abs(sum(len(block) for _start_s, block in audio.blocks()) / SAMPLE_RATE - 10.0) < 0.2


def test_a_stream_of_one_format_stays_with_torchcodec_and_other_codecs_are_not_scanned(tmp_path, monkeypatch):
    path = tmp_path / "one.mp3"
    path.write_bytes(_mp3_part(tmp_path / "a.mp3", 300, 44100, 2) + _mp3_part(tmp_path / "b.mp3", 500, 44100, 2))
    audio = AudioFile(path)
    assert audio.command_reason is None and isinstance(audio.frames(), DecodedFrames)
    # AAC in MP4 ends on a frame whose duration the edit list trims: one frame at another rate is no change.
    # (3.0116 s: the last frame keeps 717 of its 1024 samples, 16 ms, long enough to be judged.)
    assert AudioFile(make_tone(tmp_path / "t.m4a", seconds=3.0116)).command_reason is None

    import omni_caption.pipelines.decode as decode

    def no_decoding(*args, **kwargs):
        raise AssertionError("a lossless or PCM stream cannot change format: no scan")

    monkeypatch.setattr(decode, "audio_decoder", no_decoding)
    assert stream_changes(path, "flac") is None and stream_changes(path, "pcm_s16le") is None


def test_without_the_ffmpeg_command_such_a_stream_is_an_error_row_that_says_so(tmp_path, monkeypatch):
    path = _joined(tmp_path, "switch.mp3", (44100, 2), (44100, 1))
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(DecodeError, match="^its channels change from 2 to 1 at 5.0 s, which needs the ffmpeg "
                                          "command to decode, and it is not on PATH$"):
        list(AudioFile(path).blocks())


def test_the_command_reads_any_name_as_a_file_and_a_stop_partway_is_kept_with_its_reason(tmp_path):
    path = _joined(tmp_path, "pipe:1 é.mp3", (44100, 2), (44100, 1))
    frames = FfmpegFrames(path, None, SAMPLE_RATE, "changes")
    assert abs(sum(len(samples) for _t, samples in frames) / SAMPLE_RATE - 10.0) < 0.2
    assert frames.stopped_by is None

    failing = FfmpegFrames(tmp_path / "missing.mp3", None, SAMPLE_RATE, "changes")
    with pytest.raises(DecodeError, match="^ffmpeg: .*No such file or directory"):
        list(failing)


def test_a_reader_that_stops_early_leaves_no_ffmpeg_running(tmp_path):
    path = _joined(tmp_path, "switch.mp3", (44100, 2), (44100, 1))
    frames = iter(FfmpegFrames(path, None, SAMPLE_RATE, "changes"))
    next(frames)
    process_count = _ffmpeg_processes()
    frames.close()
    assert _ffmpeg_processes() == process_count - 1


def _ffmpeg_processes() -> int:
    """This process's ffmpeg children, from /proc: `ps` is not on a minimal Debian (procps)."""
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone since the listing
            continue
        name, after = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        count += name == "ffmpeg" and int(after[1]) == os.getpid()
    return count
