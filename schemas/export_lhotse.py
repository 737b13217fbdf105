"""Lhotse manifests: `recordings.jsonl.gz` (RecordingSet) and `supervisions.jsonl.gz` (SupervisionSet).

Written as the plain JSON Lines that `lhotse.load_manifest` reads, so lhotse
is not a dependency. Recordings point at the original files; their sampling
rate and length come from a `probe` the caller passes (reading audio headers
is the pipelines' job, not the schema's).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from .duckdb_views import connect_readonly
from .export_formats import ExportResult, atomic_output, iter_rows
from .segment_table import ONE_CHANNEL_SOURCE_FLAG, one_line
from .source_names import name_on_disk


@dataclass(frozen=True)
class AudioInfo:
    sampling_rate: int
    num_samples: int
    num_channels: int

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sampling_rate


Probe = Callable[[Path], AudioInfo]

# The rows of the manifests that point at the recordings (lhotse's, NeMo's), a recording's rows together.
SEGMENT_ROWS_SQL = """
SELECT source_path, recording_id, segment_index, start_s, end_s, transcript, caption, speaker, language, flags
FROM segments WHERE status = 'ok' AND start_s IS NOT NULL AND end_s IS NOT NULL
ORDER BY source_path, segment_index
"""


def find_source(source_path: str, roots: list[Path]) -> Path | None:
    """The original file of `source_path`: under a root folder, or a root that is the file itself.

    Where two inputs held files at one relative path, the run put some of the input folder's path in
    front (day1/mic.wav for <root>/mic.wav, pipelines/discover.py): a root's parents are tried last.
    """
    # A stored name with `\\xNN` in it is most likely a name that is not UTF-8 (source_names.py), but
    # a file may truly be called that: the name as stored is tried first.
    names = list(dict.fromkeys((source_path, name_on_disk(source_path))))
    for name in names:
        for root in roots:
            if root.is_file():
                if root.name == name:
                    return root.resolve()
            elif (root / name).is_file():
                return (root / name).resolve()
    for name in names:
        for root in roots:
            for parent in Path(root).absolute().parents:
                if (parent / name).is_file() and (parent / name).absolute().is_relative_to(root.absolute()):
                    return (parent / name).resolve()
    return None


def export_lhotse(dataset: str | os.PathLike, out_dir: Path, roots: list[Path], probe: Probe,
                  heard_channel: Callable[[Path], int | None] = lambda _path: None) -> ExportResult:
    """Manifests for every ok recording whose file is found under `roots`; the others are reported, not fatal.

    A recording flagged `one_channel:source` (its channels cancel in a mono mix) is supervised on the channel
    the run heard, `heard_channel(file)`: on all of them, a lhotse mix would cancel again."""
    con = connect_readonly(dataset)
    cursor = con.execute(SEGMENT_ROWS_SQL)
    recordings_path = out_dir / "recordings.jsonl.gz"
    supervisions_path = out_dir / "supervisions.jsonl.gz"
    used_ids: set[str] = set()
    skipped: list[str] = []
    count = 0
    with atomic_output(recordings_path) as rec_tmp, atomic_output(supervisions_path) as sup_tmp, \
            gzip.open(rec_tmp, "wt", encoding="utf-8") as rec_out, gzip.open(sup_tmp, "wt", encoding="utf-8") as sup_out:
        for source_path, rows in groupby(iter_rows(cursor), key=lambda r: r[0]):
            rows = list(rows)
            audio_file = find_source(source_path, roots)
            if audio_file is None:
                skipped.append(f"{source_path}: not found under {', '.join(map(str, roots))}")
                continue
            try:
                info = probe(audio_file)
            except Exception as exc:  # an unreadable file is reported and left out; the rest goes on
                skipped.append(f"{source_path}: {one_line(str(exc))}")
                continue
            rec_id = _unique_id(rows[0][1] or source_path.replace("/", "_"), used_ids)
            rec_out.write(json_line(_recording(rec_id, audio_file, info)))
            one_channel = any(ONE_CHANNEL_SOURCE_FLAG in (row[-1] or ()) for row in rows)
            channel = heard_channel(audio_file) if one_channel else None
            for row in rows:
                supervision = _supervision(rec_id, row, info, channel)
                if supervision is not None:
                    sup_out.write(json.dumps(supervision, ensure_ascii=False) + "\n")
                    count += 1
    return ExportResult([recordings_path, supervisions_path], count, skipped)


def _unique_id(base: str, used: set[str]) -> str:
    # The same bytes under two paths share a recording_id; lhotse ids must be unique.
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}-{n}"
    used.add(candidate)
    return candidate


def _channels(info: AudioInfo) -> list[int]:
    return list(range(info.num_channels))


def _recording(rec_id: str, path: Path, info: AudioInfo) -> dict:
    return {
        "id": rec_id,
        "sources": [{"type": "file", "channels": _channels(info), "source": str(path)}],
        "sampling_rate": info.sampling_rate,
        "num_samples": info.num_samples,
        "duration": info.duration_s,
        "channel_ids": _channels(info),
    }


def _supervision(rec_id: str, row: tuple, info: AudioInfo, channel: int | None = None) -> dict | None:
    _, _, index, start_s, end_s, transcript, caption, speaker, language, flags = row
    # Our times come from a 16 kHz decode; keep them inside the file as lhotse measures it.
    start = max(0.0, start_s)
    duration = min(end_s, info.duration_s) - start
    if duration <= 0:
        return None
    supervision = {
        "id": f"{rec_id}-{index:05d}",
        "recording_id": rec_id,
        "start": start,
        "duration": duration,
        "channel": channel if channel is not None else 0 if info.num_channels == 1 else _channels(info),
        "text": transcript if transcript is not None else caption,
    }
    if language:
        supervision["language"] = language
    if speaker:
        supervision["speaker"] = speaker
    custom = {}
    if transcript is not None and caption is not None:
        custom["caption"] = caption  # the text is the transcript; keep the caption too
    if flags:
        custom["flags"] = list(flags)
    if custom:
        supervision["custom"] = custom
    return supervision


def json_line(record: dict) -> str:
    """One JSON line; a path that is not UTF-8 keeps its bytes as \\udcNN escapes, which Python reads back
    to the same name (a raw lone surrogate cannot be written as UTF-8)."""
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record)
    return line + "\n"
