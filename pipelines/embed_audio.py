"""`--embed-audio`: each segment's audio as 16 kHz FLAC bytes in the `audio` column (HF `Audio` layout)."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path, PurePosixPath

import soundfile as sf

from omni_caption.schemas import STATUS_OK, SegmentRow

from .decode import SAMPLE_RATE, AudioFile, DecodeError


def flac_bytes(samples) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, format="FLAC")
    return buffer.getvalue()


def embed_segment_audio(rows: list[SegmentRow], files: dict[str, Path]) -> list[SegmentRow]:
    """Rows with `audio` filled for every ok segment whose file (`files`: source_path -> path) is readable.

    Done once, at the end of a run: decoding and encoding cost little next to
    the models, and the parts stay free of duplicated audio bytes.
    """
    out, opened = [], {}
    for row in rows:
        if row.status != STATUS_OK or row.source_path not in files or (row.audio and row.audio.get("bytes")):
            out.append(row)
            continue
        try:
            if row.source_path not in opened:
                opened[row.source_path] = AudioFile(files[row.source_path])
            samples = opened[row.source_path].read(row.start_s, row.end_s)
        except DecodeError:
            out.append(row)  # the file changed or broke since its rows were made: leave the audio out
            continue
        name = f"{PurePosixPath(row.source_path).with_suffix('')}_{row.segment_index:05d}.flac"
        out.append(replace(row, audio={"bytes": flac_bytes(samples), "path": name}))
    return out
