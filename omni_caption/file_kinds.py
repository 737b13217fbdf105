"""What kind of file a path is, where a regular file is expected.

At the package's root, beside no room (as cache_home.py): `pipelines` asks of its
inputs and --out, `schemas` of the files it exports into, and `schemas` must not
import `pipelines`."""

from __future__ import annotations

import os
import stat
from pathlib import Path


# What FFmpeg reads and recorders, phones and archives write; each was decoded here by the same path
# (tests/pipelines/test_discover.py), but AMR, which this FFmpeg only decodes. A kind left out is only
# counted in the run's "files of other kinds" line, so an archive's Broadcast WAVs (.bwf), a field
# recorder's RF64s, a browser's recordings (.weba) and broadcast MXF were passed over.
AUDIO_EXTENSIONS = frozenset({
    ".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".wma", ".aiff", ".aif",
    ".aifc", ".oga", ".spx", ".mka", ".m4b", ".caf", ".amr", ".wv", ".ac3", ".mp2", ".au", ".w64",
    ".bwf", ".rf64", ".weba", ".tta", ".dts", ".mpga",
})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".webm", ".mov", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
                              ".flv", ".m4v", ".ogv", ".wmv", ".3gp", ".3g2", ".mxf", ".vob", ".asf"})
MEDIA_EXTENSIONS = AUDIO_EXTENSIONS | VIDEO_EXTENSIONS


def is_media(path: Path) -> bool:
    return path.suffix.lower() in MEDIA_EXTENSIONS


def special_file_kind(path: Path) -> str | None:
    """'a named pipe', 'a socket', ... for what is neither a regular file nor a folder (None otherwise, or
    when it is gone): opening a pipe named like a recording would wait for a writer for ever."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    kinds = {stat.S_ISFIFO: "a named pipe", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a character device",
             stat.S_ISBLK: "a block device"}
    return next((kind for test, kind in kinds.items() if test(mode)), None)


def is_parquet_file(path: str | Path) -> bool:
    """Whether `path` opens with Parquet's magic bytes: a dataset given where recordings go."""
    try:
        with open(path, "rb") as file:
            return file.read(4) == b"PAR1"
    except OSError:
        return False


def is_text_file(path: str | Path, probe_bytes: int = 4096) -> bool:
    """Whether `path` opens as text (UTF-8 or UTF-16 with its mark, no NULs in UTF-8): a list of recordings
    given where the recordings go."""
    try:
        with open(path, "rb") as file:
            head = file.read(probe_bytes)
    except OSError:
        return False
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:  # not a character cut by the probe's end
            return False
        text = head[:error.start].decode("utf-8")
    return bool(text.strip()) and "\0" not in text and all(c.isprintable() or c in "\t\r\n" for c in text)


def is_html_page(path: str | Path) -> bool:
    """Whether `path` opens as an HTML page (after a byte-order mark and blank space)."""
    try:
        with open(path, "rb") as file:
            head = file.read(512).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    except OSError:
        return False
    return head.startswith((b"<!doctype html", b"<html"))


def is_dataset(path: str | Path) -> bool:
    """A Parquet file, or a folder of them (a sharded dataset) with nothing a run would caption beside them."""
    path = Path(path)
    if not path.is_dir():
        return is_parquet_file(path)
    try:
        names = [entry.name for entry in os.scandir(path) if not entry.name.startswith(".")]
    except OSError:
        return False
    return bool(names) and any(name.endswith(".parquet") for name in names) and all(
        name.endswith((".parquet", ".parts", ".lock")) for name in names)
