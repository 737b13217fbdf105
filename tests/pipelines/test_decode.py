"""Every listed container decodes to 16 kHz mono float32 through torchcodec/FFmpeg."""

import numpy as np
import pytest

from omni_caption.pipelines import SAMPLE_RATE, AudioFile, DecodeError, decode_audio
from tests.conftest import ffmpeg, make_tone

CONTAINERS = {
    "wav": (), "flac": (), "mp3": (), "ogg": ("-c:a", "libvorbis"), "opus": ("-c:a", "libopus"),
    "m4a": ("-c:a", "aac"), "aac": ("-c:a", "aac"),
}
VIDEO_CONTAINERS = {"mp4": ("-c:v", "libx264", "-c:a", "aac"), "mkv": ("-c:v", "libx264", "-c:a", "libopus"),
                    "webm": ("-c:v", "libvpx-vp9", "-c:a", "libopus")}


@pytest.mark.parametrize("ext", sorted(CONTAINERS))
def test_audio_containers(tmp_path, ext):
    path = make_tone(tmp_path / f"tone.{ext}", seconds=2.0, extra=("-ac", "2", *CONTAINERS[ext]))
    audio = decode_audio(path)
    assert audio.sample_rate == SAMPLE_RATE
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.duration_s == pytest.approx(2.0, abs=0.08)
    # A 440 Hz tone at 16 kHz: the spectrum peaks at 440 Hz after resampling and downmix.
    spectrum = np.abs(np.fft.rfft(audio.samples[:16000]))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / 16000 - 440) < 5


@pytest.mark.parametrize("ext", sorted(VIDEO_CONTAINERS))
def test_audio_track_of_video_containers(tmp_path, ext):
    path = tmp_path / f"clip.{ext}"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64:rate=5:duration=2", "-f", "lavfi", "-i",
           "sine=frequency=440:sample_rate=44100:duration=2", *VIDEO_CONTAINERS[ext], "-shortest", str(path))
    audio = decode_audio(path)
    assert audio.duration_s == pytest.approx(2.0, abs=0.1)


def test_slice_uses_original_time(tmp_path):
    audio = decode_audio(make_tone(tmp_path / "t.wav", seconds=3.0))
    assert len(audio.slice(1.0, 2.5)) == int(1.5 * SAMPLE_RATE)


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"),
    (b"this is text, not audio\n", "FFmpeg cannot read"),
    # An expired link's download: the server's error page under the episode's name.
    (b"\n<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head></html>\n", "an HTML page, not audio"),
    (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "FFmpeg cannot read"),
])
def test_undecodable_files_raise_one_line(tmp_path, content, reason):
    path = tmp_path / "bad.mp3"
    path.write_bytes(content)
    with pytest.raises(DecodeError) as info:
        decode_audio(path)
    assert reason in str(info.value) and "\n" not in str(info.value) and ".cpp" not in str(info.value)


@pytest.mark.parametrize("opener", [decode_audio, AudioFile])
def test_video_without_audio_stream_says_so(tmp_path, opener):
    path = tmp_path / "silent.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64:rate=5:duration=1", "-c:v", "libx264", str(path))
    with pytest.raises(DecodeError) as info:
        opener(path)
    assert str(info.value) == "no audio stream (the file has only video or other streams)"


@pytest.mark.parametrize("ext", ["opus", "mp3", "flac"])
def test_streamed_blocks_equal_whole_file_decode(tmp_path, ext):
    from omni_caption.pipelines import AudioFile

    path = make_tone(tmp_path / f"t.{ext}", seconds=7.3, extra=CONTAINERS.get(ext, ()))
    whole = decode_audio(path).samples
    blocks = list(AudioFile(path).blocks(block_samples=16000))
    assert all(len(b) == 16000 for _, b in blocks[:-1])
    streamed = np.concatenate([b for _, b in blocks])
    # The resampler may flush a few samples fewer at the very end of a linear pass.
    assert abs(len(streamed) - len(whole)) <= 32
    n = min(len(streamed), len(whole))
    np.testing.assert_array_equal(streamed[:n], whole[:n])
    assert [round(t - blocks[0][0], 6) for t, _ in blocks] == [float(i) for i in range(len(blocks))]


def test_sequential_decoding_op_is_still_there():
    # AudioFile.blocks relies on torchcodec's (non-public) core get_next_frame op;
    # a torchcodec upgrade that drops it must fail here, not silently fall back.
    from torchcodec._core import ops

    assert callable(ops.get_next_frame)


def test_read_returns_the_span_in_file_time(tmp_path):
    from omni_caption.pipelines import AudioFile

    path = make_tone(tmp_path / "t.wav", seconds=5.0)
    assert len(AudioFile(path).read(1.0, 3.5)) == int(2.5 * SAMPLE_RATE)


@pytest.mark.parametrize("channels,torchcodec_mixes", [(9, False), (12, False), (32, False), (8, True)])
def test_channel_counts_without_a_standard_layout_are_averaged_to_mono(tmp_path, channels, torchcodec_mixes):
    # A field recorder's poly WAV (8 tracks and a stereo mix) or a microphone array: FFmpeg's resampler refused
    # to mix 9, 12 or 32 channels to mono, and the file was an error row blaming "a buggy FFmpeg version".
    import soundfile as sf

    t = np.arange(48000 * 2) / 48000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = tmp_path / f"poly{channels}.wav"
    sf.write(path, np.repeat(tone[:, None], channels, axis=1), 48000, subtype="PCM_24")
    audio = AudioFile(path)
    samples = np.concatenate([block for _start_s, block in audio.blocks()])
    assert audio.torchcodec_mixes is torchcodec_mixes
    assert abs(len(samples) / SAMPLE_RATE - 2.0) < 0.01
    if not torchcodec_mixes:  # the mean of equal channels is the tone itself
        assert abs(float(np.abs(samples[1000:-1000]).max()) - 0.3) < 0.01
    assert len(audio.read(1.0, 1.5)) == SAMPLE_RATE // 2
    assert abs(len(decode_audio(path).samples) - len(samples)) <= 32  # a whole decode flushes the resampler's 1 ms


@pytest.fixture
def without_ffmpeg(monkeypatch):
    """As on a machine where `pip install` ran but FFmpeg was never installed: loading torchcodec's decoders
    fails (importing torchcodec.decoders is what loads FFmpeg's shared libraries)."""
    import sys

    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)


def test_a_run_without_ffmpeg_stops_before_loading_a_model_or_writing(tmp_path, without_ffmpeg):
    # It made every recording an error row holding torchcodec's page-long traceback, kept as done by a rerun.
    from omni_caption.pipelines import DecodingUnavailable, RunOptions, run_corpus
    from omni_caption.pipelines.run_preview import preview_run

    (tmp_path / "in").mkdir()
    make_tone(tmp_path / "in" / "talk.wav")
    out, cache = tmp_path / "out.parquet", tmp_path / "cache"
    options = RunOptions(tasks=("caption",), model="tiny-random", cache_dir=cache)
    for attempt in (lambda: preview_run([tmp_path / "in"], out, options),
                    lambda: run_corpus([tmp_path / "in"], out, options, show_progress=False)):
        with pytest.raises(DecodingUnavailable, match=r"^FFmpeg's shared libraries .*\(apt-get install -y ffmpeg"):
            attempt()
    assert not out.exists() and not out.with_name(out.name + ".parts").exists()
    assert not cache.exists() or not any(cache.rglob("*.safetensors"))  # the tiny model was never built


def test_a_file_opened_without_ffmpeg_gets_one_line_not_torchcodec_s_traceback(tmp_path, monkeypatch):
    # Where the run's own check cannot see it: a Ray worker on a node without FFmpeg.
    from omni_caption.pipelines import decode

    def torchcodec_without_ffmpeg(*_args, **_kwargs):
        raise RuntimeError("Could not load libtorchcodec. Likely causes:\n          1. FFmpeg is not properly "
                           "installed in your environment. We support\n             versions 4, 5, 6, 7, and 8"
                           "\n[start of libtorchcodec loading traceback]\nFFmpeg version 8:\nTraceback ...")

    monkeypatch.setattr(decode, "audio_decoder", torchcodec_without_ffmpeg)
    with pytest.raises(DecodeError) as info:
        AudioFile(make_tone(tmp_path / "talk.wav"))
    assert str(info.value) == decode.FFMPEG_MISSING


# As torchcodec 0.11 words it on a Debian 12 with FFmpeg 5 whose Python has no shared library (debootstrapped).
TORCHCODEC_WITHOUT_LIBPYTHON = """Could not load libtorchcodec. Likely causes:
          1. FFmpeg is not properly installed in your environment. We support
[start of libtorchcodec loading traceback]
FFmpeg version 8:
OSError: libavutil.so.60: cannot open shared object file: No such file or directory
FFmpeg version 7:
OSError: libavutil.so.59: cannot open shared object file: No such file or directory
FFmpeg version 6:
OSError: libavutil.so.58: cannot open shared object file: No such file or directory
FFmpeg version 5:
OSError: libpython3.11.so.1.0: cannot open shared object file: No such file or directory
OSError: Could not load this library: /root/omni/.venv/lib/python3.11/site-packages/torchcodec/libtorchcodec_custom_ops5.so
FFmpeg version 4:
OSError: libavutil.so.56: cannot open shared object file: No such file or directory
[end of libtorchcodec loading traceback]."""


def test_a_missing_libpython_is_named_not_taken_for_a_missing_ffmpeg():
    # FFmpeg was installed; the one-line error sent the user to install it again.
    from omni_caption.pipelines.decode import FFMPEG_MISSING, why_torchcodec_failed

    assert why_torchcodec_failed(TORCHCODEC_WITHOUT_LIBPYTHON) == (
        "torchcodec needs libpython3.11.so.1.0, Python's shared library, which Debian and Ubuntu ship apart from "
        "Python: apt-get install -y libpython3-dev")
    only_ffmpeg_missing = TORCHCODEC_WITHOUT_LIBPYTHON.replace("libpython3.11.so.1.0", "libavutil.so.57")
    assert why_torchcodec_failed(only_ffmpeg_missing) == FFMPEG_MISSING
