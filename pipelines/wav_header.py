"""The length a WAV file's own header declares, to tell a cut-short copy from a whole one.

FFmpeg reports a WAV's duration from the file's size, so a copy cut short looks
whole to it; the RIFF `data` chunk still says how many bytes of audio there
should be.
"""

from __future__ import annotations

import struct
from pathlib import Path

# Streaming writers that never came back to fill in the size leave 0 or all ones: no claim then.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
_MAX_CHUNKS = 64  # the data chunk comes after fmt and a few metadata chunks; do not walk a whole bad file


def declared_wav_seconds(path: str | Path) -> float | None:
    """Seconds of audio the RIFF header of `path` declares, or None if it is not a WAV or says nothing."""
    try:
        with open(path, "rb") as file:
            riff = file.read(12)
            if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
                return None
            byte_rate = None
            for _ in range(_MAX_CHUNKS):
                header = file.read(8)
                if len(header) < 8:
                    return None
                kind, size = header[:4], struct.unpack("<I", header[4:])[0]
                if kind == b"fmt ":
                    fmt = file.read(size + (size & 1))
                    if len(fmt) < 12:
                        return None
                    byte_rate = struct.unpack("<I", fmt[8:12])[0]
                elif kind == b"data":
                    if byte_rate and size not in _UNKNOWN_SIZES:
                        return size / byte_rate
                    return None
                else:
                    file.seek(size + (size & 1), 1)
    except OSError:
        return None
    return None
