"""Files cut short (an interrupted copy or download) keep the audio before the cut, and say so."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from omni_caption.pipelines import AudioFile, DecodeError, RunOptions, run_corpus
from omni_caption.pipelines.span_reader import ForwardSpans
from omni_caption.pipelines.declared_length import declared_wav_seconds, has_mp3_length_frame, ogg_unfinished
from tests.conftest import make_tone

FORMATS = ["flac", "mp3", "wav", "m4a", "opus", "ogg"]
# How each container shows a cut: a decode error at the cut (flac, mp4 with its index first, a WAV cut
# inside a sample), a header that declares more (mp3's Xing/Info frame, the WAV data chunk), or an Ogg
# stream that never reaches its end-of-stream page.
STOPPED, DECLARED, UNFINISHED = "decoding stopped", "header declares", "Ogg page is incomplete"
DETECTED = {"flac": (STOPPED,), "mp3": (DECLARED,), "wav": (STOPPED, DECLARED), "m4a": (STOPPED,),
            "opus": (UNFINISHED,), "ogg": (UNFINISHED,)}


def cut(path, keep: float):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path


def whole_pass(audio: AudioFile) -> float:
    return sum(len(block) for _, block in audio.blocks()) / 16000


@pytest.mark.parametrize("ext", FORMATS)
def test_a_whole_file_does_not_look_cut(tmp_path, ext):
    audio = AudioFile(make_tone(tmp_path / f"t.{ext}", seconds=12.0, extra=("-movflags", "+faststart")
                                if ext == "m4a" else ()))
    assert whole_pass(audio) == pytest.approx(12.0, abs=0.1) and audio.ends_early is None


@pytest.mark.parametrize("ext", FORMATS)
def test_a_cut_file_keeps_the_audio_before_the_cut_and_says_so_where_it_can(tmp_path, ext):
    path = cut(make_tone(tmp_path / f"t.{ext}", seconds=12.0, extra=("-movflags", "+faststart")
                         if ext == "m4a" else ()), keep=0.5)
    audio = AudioFile(path)
    decoded = whole_pass(audio)
    assert 3.0 < decoded < 9.0
    assert any(how in audio.ends_early for how in DETECTED[ext]) and f"{decoded:.1f} s" in audio.ends_early
    # Reading up to the cut from the source (no decoded-audio cache) stops there too, without an error.
    span = ForwardSpans(AudioFile(path)).read(0.0, 12.0)
    assert len(span) == pytest.approx(decoded * 16000, abs=2000)


@pytest.mark.parametrize(("name", "kind"), [("t.wav", ()), ("t.bwf", ()), ("t.rf64", ("-rf64", "always"))])
def test_a_wav_cut_between_samples_is_known_by_its_header(tmp_path, name, kind):
    """An RF64 (a field recorder's WAV past 4 GB) declares its size in a `ds64` chunk, and was not read."""
    path = make_tone(tmp_path / name, seconds=12.0, extra=("-f", "wav", *kind))  # 16-bit mono: 2 bytes a sample
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2 // 4 * 4])
    audio = AudioFile(path)
    whole_pass(audio)
    assert DECLARED in audio.ends_early and "declares 12.0 s" in audio.ends_early


# WAV codecs of dictaphones, voicemail and telephony: a compressed one's header byte rate is an average.
WAV_CODECS = ["pcm_u8", "pcm_s24le", "pcm_f32le", "pcm_alaw", "pcm_mulaw", "adpcm_ms", "adpcm_ima_wav", "libgsm_ms"]


@pytest.mark.parametrize("codec", WAV_CODECS)
def test_a_whole_wav_of_any_codec_does_not_look_cut_and_one_cut_in_half_does(tmp_path, codec):
    """A whole 12 s MS or IMA ADPCM WAV at 44.1 kHz 'declared' 16.6 s by its byte rate and was flagged cut short;
    at 8 kHz MS ADPCM declared a quarter of its length, so one cut in half was not flagged."""
    extra = ("-ar", "8000" if codec == "libgsm_ms" else "44100", "-c:a", codec)
    audio = AudioFile(make_tone(tmp_path / "whole.wav", seconds=12.0, extra=extra))
    assert 11.9 < whole_pass(audio) < 12.3 and audio.ends_early is None  # ADPCM and GSM pad their last block
    cut_audio = AudioFile(cut(make_tone(tmp_path / "cut.wav", seconds=12.0, extra=extra), keep=0.5))
    assert whole_pass(cut_audio) < 7.0 and any(how in cut_audio.ends_early for how in (STOPPED, DECLARED))


def test_a_file_cut_before_any_audio_is_still_an_error(tmp_path):
    path = cut(make_tone(tmp_path / "t.flac", seconds=12.0), keep=0.02)
    with pytest.raises(DecodeError):
        AudioFile(path).blocks().__next__()


def wav_bytes(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(kind + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1) for kind, data in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def fmt_chunk(rate: int = 16000, channels: int = 1, bits: int = 16) -> tuple[bytes, bytes]:
    block = channels * bits // 8
    return b"fmt ", struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)


def test_wav_header_reads_the_declared_length_past_other_chunks(tmp_path):
    path = tmp_path / "a.wav"
    path.write_bytes(wav_bytes([fmt_chunk(rate=8000, channels=2), (b"LIST", b"INFOabc"),
                                (b"data", b"\0" * 8000 * 4 * 3)]))
    assert declared_wav_seconds(path) == pytest.approx(3.0)
    path.write_bytes(path.read_bytes()[:2000])  # cut: the header still says 3 s
    assert declared_wav_seconds(path) == pytest.approx(3.0)


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF])
def test_wav_header_from_a_streaming_writer_claims_nothing(tmp_path, size):
    path = tmp_path / "a.wav"
    data = wav_bytes([fmt_chunk(), (b"data", b"\0" * 320)])
    path.write_bytes(data.replace(b"data" + struct.pack("<I", 320), b"data" + struct.pack("<I", size)))
    assert declared_wav_seconds(path) is None


@pytest.mark.parametrize("content", [b"", b"RIFF", b"ID3\x03" + b"\0" * 100, b"RIFF\0\0\0\0WAVEfmt "])
def test_wav_header_of_other_or_broken_files_is_none(tmp_path, content):
    path = tmp_path / "a.wav"
    path.write_bytes(content)
    assert declared_wav_seconds(path) is None


def test_a_run_keeps_a_cut_recording_with_its_last_row_flagged(tmp_path, cache_dir, tiny_dir):
    import duckdb

    folder = tmp_path / "in"
    folder.mkdir()
    make_tone(folder / "whole.flac", seconds=40.0, freq=330)
    cut(make_tone(folder / "cut.flac", seconds=40.0, freq=550), keep=0.6)
    out = tmp_path / "x.parquet"
    summary = run_corpus([folder], out, RunOptions(tasks=("caption", "transcript"), model="tiny-random",
                                                   max_new_tokens=3, cache_dir=cache_dir, device="cpu"),
                         show_progress=False)
    assert (summary.ok, summary.errors) == (2, 0)
    assert len(summary.warning_lines) == 1 and summary.warning_lines[0].startswith("cut.flac: the audio ends at")
    rows = duckdb.sql(f"SELECT source_path, segment_index, flags, recording_duration_s, caption IS NOT NULL, "
                      f"transcript IS NOT NULL FROM '{out}' ORDER BY 1, 2").fetchall()
    cut_rows = [r for r in rows if r[0] == "cut.flac"]
    assert 15.0 < cut_rows[0][3] < 30.0 and all(r[4] and r[5] for r in rows)
    # The recording's own finding survived the merge into the final file, on its last row only.
    assert ["truncated:source" in r[2] for r in cut_rows] == [False] * (len(cut_rows) - 1) + [True]
    assert not any("truncated:source" in r[2] for r in rows if r[0] == "whole.flac")
    assert np.isfinite([r[3] for r in rows]).all()


def test_an_mp3_without_a_length_frame_claims_nothing(tmp_path):
    """A VBR mp3 that starts quietly and has no Xing/Info frame: FFmpeg's size-over-first-bitrate guess
    is more than twice its length. It must not be taken for a file cut short."""
    from tests.conftest import ffmpeg

    path = tmp_path / "quiet_first.mp3"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono:d=10", "-f", "lavfi", "-i", "anoisesrc=d=20:a=0.3:r=44100",
           "-filter_complex", "[0][1]concat=n=2:v=0:a=1", "-q:a", "2", "-write_xing", "0", str(path))
    audio = AudioFile(path)
    assert audio.duration_hint_s > 45  # the guess: the flaw this test is about is still there
    assert whole_pass(audio) == pytest.approx(30.0, abs=0.2) and audio.ends_early is None
    assert not has_mp3_length_frame(path)
    assert has_mp3_length_frame(make_tone(tmp_path / "tagged.mp3"))  # FFmpeg's own mp3s carry an Info frame


def test_an_id3_tag_before_the_first_frame_is_skipped(tmp_path):
    tagged = make_tone(tmp_path / "t.mp3")
    tag_body = b"\0" * 300_000  # a large tag (cover art), further in than the bytes looked at after it
    size = bytes((len(tag_body) >> shift) & 0x7F for shift in (21, 14, 7, 0))
    with_tag = tmp_path / "with_tag.mp3"
    with_tag.write_bytes(b"ID3\x03\x00\x00" + size + tag_body + tagged.read_bytes())
    assert has_mp3_length_frame(with_tag)


def ogg_pages(data: bytes) -> list[bytes]:
    """The pages of an Ogg file, split by their own headers (27 bytes, a lacing table, the body)."""
    pages, at = [], 0
    while at < len(data):
        segments = data[at + 26]
        end = at + 27 + segments + sum(data[at + 27:at + 27 + segments])
        pages.append(data[at:end])
        at = end
    return pages


def test_an_ogg_file_cut_between_pages_is_known_by_its_missing_end_of_stream(tmp_path):
    path = make_tone(tmp_path / "t.opus", seconds=12.0)
    pages = ogg_pages(path.read_bytes())
    assert pages[-1][5] & 0x04 and not any(page[5] & 0x04 for page in pages[:-1])  # only the last says "end"
    path.write_bytes(b"".join(pages[:len(pages) // 2]))
    audio = AudioFile(path)
    decoded = whole_pass(audio)
    assert 2.0 < decoded < 10.0
    assert "no end-of-stream page" in audio.ends_early and f"{decoded:.1f} s" in audio.ends_early


def test_chained_ogg_streams_that_all_end_are_whole(tmp_path):
    first, second = make_tone(tmp_path / "a.opus", seconds=3.0), make_tone(tmp_path / "b.opus", seconds=3.0, freq=660)
    chained = tmp_path / "chained.opus"
    chained.write_bytes(first.read_bytes() + second.read_bytes())
    assert ogg_unfinished(chained) is None
    chained.write_bytes(first.read_bytes() + b"".join(ogg_pages(second.read_bytes())[:-1]))
    assert "no end-of-stream page" in ogg_unfinished(chained)


def test_ogg_damage_in_the_middle_or_other_files_claim_nothing(tmp_path):
    path = make_tone(tmp_path / "t.ogg", seconds=12.0)
    data = bytearray(path.read_bytes())
    second_page = len(ogg_pages(bytes(data))[0])
    data[second_page:second_page + 4] = b"XXXX"  # a page that is not where the one before said: damage
    path.write_bytes(bytes(data))
    assert ogg_unfinished(path) is None
    assert ogg_unfinished(make_tone(tmp_path / "t.flac")) is None
    assert ogg_unfinished(tmp_path / "missing.ogg") is None


def _wav_declaring(path, seconds: float, declared_s: float, after: bytes = b"") -> None:
    """A 16 kHz 16-bit WAV of `seconds` of noise whose data chunk declares `declared_s`, `after` appended."""
    import soundfile as sf

    samples = (np.random.default_rng(3).standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32)
    sf.write(path, samples, 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = data.find(b"data")
    data[at + 4:at + 8] = struct.pack("<I", int(16000 * 2 * declared_s))
    path.write_bytes(bytes(data) + after)


def test_a_wav_holding_more_than_its_header_declares_is_read_to_its_end(tmp_path):
    # A WAV past 4 GB wraps its 32-bit size; FFmpeg, soundfile and players read only what the size says.
    path = tmp_path / "long.wav"
    _wav_declaring(path, seconds=60.0, declared_s=10.0)
    audio = AudioFile(path)
    assert audio.command_reason == "its header declares 10.0 s of audio, and 50.0 s more follow"
    assert whole_pass(audio) == pytest.approx(60.0, abs=0.01) and audio.ends_early is None
    assert np.abs(audio.read(55.0, 56.0)).max() > 0.1


def test_chunks_after_the_data_or_a_few_stray_bytes_are_no_more_audio(tmp_path):
    tagged = tmp_path / "tagged.wav"
    _wav_declaring(tagged, seconds=5.0, declared_s=5.0, after=b"LIST" + struct.pack("<I", 4) + b"INFO")
    stray = tmp_path / "stray.wav"
    _wav_declaring(stray, seconds=5.0, declared_s=5.0, after=bytes(3000))  # under a second
    for path in (tagged, stray):
        assert AudioFile(path).command_reason is None and whole_pass(AudioFile(path)) == pytest.approx(5.0, abs=0.01)


@pytest.mark.parametrize("ext", ["m4a", "mp4", "mov"])
def test_an_mp4_whose_recording_stopped_before_its_index_was_written_is_named_so(tmp_path, ext):
    """A voice memo or meeting app that crashed leaves its audio without the `moov` box written last: the error
    row said only 'Invalid data found when processing input'."""
    path = cut(make_tone(tmp_path / f"memo.{ext}", seconds=12.0), keep=0.7)
    with pytest.raises(DecodeError, match=r"^an MP4/M4A/MOV whose index \(its moov box\) was never written"):
        AudioFile(path)
    # A file of another kind that FFmpeg cannot read keeps FFmpeg's reason.
    (tmp_path / "junk.m4a").write_bytes(b"\0\0\0\x10junk" + bytes(64))
    with pytest.raises(DecodeError, match="FFmpeg cannot read it"):
        AudioFile(tmp_path / "junk.m4a")
