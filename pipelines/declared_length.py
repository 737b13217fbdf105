"""The length a file's own header declares, to tell a cut-short copy from a whole one.

Only a length the file really declares counts. FFmpeg's duration is a guess
for some formats, and a guess that is too long would flag whole files:

- WAV: FFmpeg measures it by the file's size, which a cut shrinks too; the
  RIFF `data` chunk still says how many bytes of audio there should be.
- MP3: the length is declared only by a Xing/Info or VBRI frame; without one,
  FFmpeg divides the size by the first frame's bit rate, which for a VBR file
  that starts quietly is more than twice the truth.
- FLAC (STREAMINFO) and MP4/M4A/MOV (the moov index) declare theirs.
- Ogg (Opus, Vorbis, FLAC in Ogg) declares no length, but every logical
  stream ends with a page marked end-of-stream: a file whose streams do not
  all end, or whose last page is incomplete, was not written to its end.
- Anything else (raw AAC, ...): no claim.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

DECLARING_CONTAINERS = {".flac", ".m4a", ".mp4", ".mov", ".m4b"}
_MP3_TAG_BYTES = 64 * 1024  # an ID3v2 tag with cover art can push the first frame far in; look this far


def declared_seconds(path: str | Path, ffmpeg_duration_s: float | None) -> float | None:
    """Seconds of audio `path` declares it holds, or None where it declares nothing trustworthy."""
    suffix = Path(path).suffix.lower()
    if suffix in (".wav", ".wave", ".bwf", ".rf64"):  # a Broadcast WAV is a RIFF WAVE with a `bext` chunk
        return declared_wav_seconds(path)
    if suffix in DECLARING_CONTAINERS or (suffix == ".mp3" and has_mp3_length_frame(path)):
        return ffmpeg_duration_s or None
    return None


def has_mp3_length_frame(path: str | Path) -> bool:
    """Whether the MP3's first frame is a Xing/Info or VBRI frame, which counts the file's frames."""
    try:
        with open(path, "rb") as file:
            head = file.read(10)
            start = 0
            if head[:3] == b"ID3" and len(head) == 10:  # skip the ID3v2 tag: its size is 4 x 7 bits
                start = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
            file.seek(start)
            data = file.read(_MP3_TAG_BYTES)
    except OSError:
        return False
    sync = next((i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] & 0xE0 == 0xE0), None)
    if sync is None:
        return False
    first_frame = data[sync:sync + 200]  # the tag sits after the side information, 4 + 9..32 (+2) bytes in
    return any(tag in first_frame for tag in (b"Xing", b"Info", b"VBRI"))

# Streaming writers that never came back to fill in the size leave 0 or all ones: no claim then.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
_MAX_CHUNKS = 64  # the data chunk comes after fmt and a few metadata chunks; do not walk a whole bad file


def declared_wav_seconds(path: str | Path) -> float | None:
    """Seconds of audio the RIFF header of `path` declares, or None if it is not a WAV or says nothing."""
    try:
        with open(path, "rb") as file:
            found = _wav_data_chunk(file)
    except OSError:
        return None
    if found is None:
        return None
    byte_rate, size, _data_start, fact_seconds = found
    return fact_seconds if fact_seconds is not None else size / byte_rate


# Format tags whose byte rate is exact, a fixed number of bytes per sample: PCM, IEEE float, A-law, mu-law.
# A compressed one's (MS ADPCM, IMA ADPCM, GSM) is an average the encoder rounds: a whole 3 s MS ADPCM file
# "declared" 4.2 s and was flagged cut short. Its length is in the `fact` chunk, or nowhere.
_FIXED_RATE_TAGS = {1, 3, 6, 7}
_EXTENSIBLE_TAG = 0xFFFE  # the real tag is the first two bytes of the sub-format GUID
# RIFF, and the 64-bit forms a field recorder writes past 4 GB (RF64; BW64, its broadcast twin).
_RIFF_KINDS = (b"RIFF", b"RF64", b"BW64")


def _wav_data_chunk(file) -> tuple[int, int, int, float | None] | None:
    """(byte rate from `fmt `, declared size, offset of the first byte, seconds from the
    `fact` chunk of a compressed format) of the `data` chunk of the WAV `file` is open on, or None if it is
    not a WAV, has none, or says nothing of its length (neither an exact byte rate nor a `fact` before it, or
    a size meaning "unknown", which FFmpeg reads to the end)."""
    riff = file.read(12)
    if len(riff) < 12 or riff[:4] not in _RIFF_KINDS or riff[8:12] != b"WAVE":
        return None
    byte_rate, fixed_rate, sample_rate, fact_samples = None, False, None, None
    data_size_64 = None  # an RF64's data size, in its `ds64` chunk: the `data` chunk's own says 0xFFFFFFFF
    for _ in range(_MAX_CHUNKS):
        header = file.read(8)
        if len(header) < 8:
            return None
        kind, size = header[:4], struct.unpack("<I", header[4:])[0]
        if kind == b"fmt ":
            fmt = file.read(size + (size & 1))
            if len(fmt) >= 12:
                tag, _channels, sample_rate, byte_rate = struct.unpack("<HHII", fmt[:12])
                if tag == _EXTENSIBLE_TAG and len(fmt) >= 26:
                    tag = struct.unpack("<H", fmt[24:26])[0]
                fixed_rate = tag in _FIXED_RATE_TAGS
        elif kind == b"ds64" and size >= 16:
            data_size_64 = struct.unpack("<QQ", file.read(16))[1]
            file.seek(size - 16 + (size & 1), 1)
        elif kind == b"fact" and size >= 4:
            fact_samples = struct.unpack("<I", file.read(4))[0]
            file.seek(size - 4 + (size & 1), 1)
        elif kind == b"data":
            size = data_size_64 if size == 0xFFFFFFFF and data_size_64 else size
            fact_s = fact_samples / sample_rate if fact_samples and sample_rate and not fixed_rate else None
            if size in _UNKNOWN_SIZES or not byte_rate or not (fixed_rate or fact_s):
                return None
            return byte_rate, size, file.tell(), fact_s
        else:
            file.seek(size + (size & 1), 1)
    return None


def wav_data_past_its_size(path: str | Path) -> str | None:
    """How much more audio a WAV holds than its `data` chunk declares ('its header declares 10.0 s of
    audio, and 50.0 s more follow'), or None.

    A WAV past 4 GB wraps its 32-bit size (a multi-day field recording), and a
    recorder that stops without fixing its header leaves an old one: FFmpeg,
    soundfile and players then read only what the size says, and the rest went
    unread with no word. Chunks after the data (LIST, id3) are walked; only bytes
    that are no chunk count.
    """
    try:
        size_on_disk = os.path.getsize(path)
        with open(path, "rb") as file:
            found = _wav_data_chunk(file)
            if found is None:
                return None  # not a WAV, or one FFmpeg reads to its end
            byte_rate, size, data_start, _fact_s = found
            position = data_start + size + (size & 1)
            for _ in range(_MAX_CHUNKS):  # what follows the data: chunks to the end, or more audio
                if position + 8 > size_on_disk:
                    return None
                file.seek(position)
                header = file.read(8)
                kind, chunk_size = header[:4], struct.unpack("<I", header[4:])[0]
                if not all(32 <= c < 127 for c in kind) or position + 8 + chunk_size > size_on_disk:
                    extra_s = (size_on_disk - data_start - size) / byte_rate
                    if extra_s < 1.0:
                        return None
                    return f"its header declares {size / byte_rate:.1f} s of audio, and {extra_s:.1f} s more follow"
                position += 8 + chunk_size + (chunk_size & 1)
    except OSError:
        return None
    return None


_OGG_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, sequence, crc, segments
_OGG_BEGIN, _OGG_END = 0x02, 0x04
_MAX_OGG_PAGES = 2_000_000  # about 100 hours of Opus; a bound on the walk, not a limit on the file


def ogg_unfinished(path: str | Path) -> str | None:
    """Why the Ogg file at `path` stops before its streams end, or None (not Ogg, or whole, or unreadable).

    Walks the page headers only (a few ms for an hour of Opus). A page header that
    is not where the previous page said is damage, not a cut: no claim then, and
    the decoder reports what it finds.
    """
    try:
        with open(path, "rb") as file:
            if file.read(4) != b"OggS":
                return None
            file.seek(0)
            open_streams: set[int] = set()
            for _ in range(_MAX_OGG_PAGES):
                header = file.read(_OGG_HEADER.size)
                if not header:
                    break
                if len(header) < _OGG_HEADER.size:
                    return "its last Ogg page is incomplete"
                capture, version, flags, _, serial, _, _, segments = _OGG_HEADER.unpack(header)
                if capture != b"OggS" or version != 0:
                    return None
                lacing = file.read(segments)
                body = sum(lacing)
                if len(lacing) < segments or len(file.read(body)) < body:
                    return "its last Ogg page is incomplete"
                if flags & _OGG_BEGIN:
                    open_streams.add(serial)
                if flags & _OGG_END:
                    open_streams.discard(serial)
            else:
                return None
    except OSError:
        return None
    if open_streams:
        return "its Ogg stream has no end-of-stream page"
    return None


_MP4_FIRST_BOXES = (b"ftyp", b"wide", b"free", b"skip", b"mdat")  # what an MP4, M4A or QuickTime file opens with
_MAX_MP4_BOXES = 10_000  # top-level boxes are few (ftyp, moov, mdat, free, ...); do not walk a bad file for ever
MP4_WITHOUT_INDEX = ("an MP4/M4A/MOV whose index (its moov box) was never written: the recording stopped before "
                     "it was finished (the app or device crashed, or the copy was cut), so no player or decoder "
                     "can read its audio; untrunc rebuilds the index from a whole file made by the same device")


def mp4_without_index(path: str | Path) -> bool:
    """Whether `path` is an MP4-family file whose top-level boxes hold no `moov`: a phone's voice memo or a
    meeting app's recording that stopped before it was finished. FFmpeg says only 'Invalid data found'."""
    try:
        with open(path, "rb") as file:
            position = 0
            for _ in range(_MAX_MP4_BOXES):
                file.seek(position)
                header = file.read(16)
                if len(header) < 8:
                    return position > 0  # walked every box to the end (or past it: the last cut short)
                size, kind = struct.unpack(">I4s", header[:8])
                if kind == b"moov" or (position == 0 and kind not in _MP4_FIRST_BOXES):
                    return False
                if size == 1 and len(header) == 16:  # a 64-bit size follows the type
                    size = struct.unpack(">Q", header[8:])[0]
                elif size == 0:  # the box runs to the end of the file
                    return True
                if size < 8:
                    return False  # no box: not a file this can tell about
                position += size
    except OSError:
        return False
    return False
