"""NeMo manifests: one JSON line per segment, as NeMo's ASR datasets and NeMo Curator's audio stages read them.

Each line points into the original recording (`audio_filepath`, `offset`,
`duration`), as NeMo's manifests of long audio do, so nothing is cut or
copied; `text` is the transcript, or the caption where there is none. The
rest of the row rides along (`caption`, `language`, `speaker`, `flags`,
`recording_id`, `segment_index`) for filtering before training. Rows with
no text (digital silence, a failed task) have no line.
"""

from __future__ import annotations

import os
from itertools import groupby
from pathlib import Path

from .duckdb_views import connect_readonly
from .export_formats import ExportResult, atomic_output, iter_rows
from .export_lhotse import SEGMENT_ROWS_SQL, find_source, json_line


def export_nemo(dataset: str | os.PathLike, out: Path, roots: list[Path]) -> ExportResult:
    """The manifest of every ok segment with text whose recording is found under `roots`; a recording not found
    is reported, not fatal."""
    cursor = connect_readonly(dataset).execute(SEGMENT_ROWS_SQL)
    skipped: list[str] = []
    count = 0
    with atomic_output(out) as tmp, open(tmp, "w", encoding="utf-8") as manifest:
        for source_path, rows in groupby(iter_rows(cursor), key=lambda r: r[0]):
            audio_file = find_source(source_path, roots)
            if audio_file is None:
                skipped.append(f"{source_path}: not found under {', '.join(map(str, roots))}")
                continue
            for row in rows:
                entry = nemo_entry(audio_file, row)
                if entry is not None:
                    manifest.write(json_line(entry))
                    count += 1
    return ExportResult([out], count, skipped)


def nemo_entry(audio_file: Path, row: tuple) -> dict | None:
    """The manifest line of one segment row (SEGMENT_ROWS_SQL's columns), or None where it has no text."""
    _, recording_id, index, start_s, end_s, transcript, caption, speaker, language, flags = row
    text = transcript if transcript is not None else caption
    offset = max(0.0, start_s)
    if text is None or end_s <= offset:
        return None
    entry = {"audio_filepath": str(audio_file), "offset": offset, "duration": end_s - offset, "text": text}
    if transcript is not None and caption is not None:
        entry["caption"] = caption  # the text is the transcript; keep the caption too
    if language:
        entry["language"] = language
    if speaker:
        entry["speaker"] = speaker
    entry.update(recording_id=recording_id, segment_index=index, flags=list(flags or ()))
    return entry
