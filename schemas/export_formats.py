"""Exports that need only the dataset: JSON Lines, a Hugging Face Parquet dataset, SRT/WebVTT.

Every output file appears under its final name only complete (write temp,
fsync, rename), like the dataset itself; but a link or a device (`--out
/dev/stdout`, `/dev/null`, a pipe) is written into, as `cat >` would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import pyarrow.parquet as pq

from omni_caption.file_kinds import special_file_kind

from .dataset_card import dataset_card, is_own_card
from .dataset_info import describe_dataset
from .duckdb_views import connect_readonly, dataset_files
from .parquet_store import HF_AUDIO_FEATURES, HF_METADATA_KEY, current_schema_batches, temp_file_beside
from .segment_table import SEGMENT_SCHEMA
from .subtitles import cues_from_rows, subtitle_names, to_srt, to_vtt

# What `datasets` reads from the schema metadata to type columns; only `audio`
# needs it (its storage struct{bytes, path} would otherwise load as a plain dict).
# The row group size `datasets` itself uses for audio, so readers fetch few clips at a time.
HF_AUDIO_ROW_GROUP = 100
HF_SHARD_NAME = re.compile(r"train-\d{5}-of-\d{5}\.parquet")


@dataclass(frozen=True)
class ExportResult:
    paths: list[Path]
    rows: int  # rows, cues or supervisions written
    skipped: list[str]  # one line per recording left out, and why


def written_through(path: Path) -> bool:
    """A link, or what is neither a regular file nor a folder: renaming over it would replace the link, or
    the device node itself (/dev/null, for root), so its content is written into it instead."""
    return path.is_symlink() or special_file_kind(path) is not None


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temp path to write to; renamed over `path` only if the block succeeds (copied into it where
    `written_through`)."""
    through = written_through(path)
    if not through:
        path.parent.mkdir(parents=True, exist_ok=True)
    # A written-through output's temp file goes to TMPDIR: /dev is not ours to litter.
    fd, tmp = temp_file_beside(Path(tempfile.gettempdir()) / path.name if through else path)
    os.close(fd)
    try:
        yield tmp
        if through:
            with open(tmp, "rb") as source, open(path, _through_mode(path)) as target:
                shutil.copyfileobj(source, target, 1 << 20)
            tmp.unlink()
            return
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _through_mode(path: Path) -> str:
    """'ab' into the process's own streams (`--out -` is /dev/stdout): 'wb' opened the file the shell had given
    them anew, truncating it, so `--out - >> all.jsonl` lost what all.jsonl held, and `{ echo; ...; } > f`
    the echo. Appended, a stream's bytes follow what was written into it before, which is flushed first."""
    name = str(path)
    if name in ("/dev/stdout", "/dev/stderr") or name.startswith(("/dev/fd/", "/proc/self/fd/")):
        sys.stdout.flush()
        sys.stderr.flush()
        return "ab"
    return "wb"


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


# Every column of every row, an embedded clip as its path alone: text formats have no binary (base64 FLAC would
# make a row of some 100 KB).
ROWS_WITHOUT_AUDIO_BYTES = ("SELECT * REPLACE (CASE WHEN audio IS NULL THEN NULL ELSE {'path': audio.path} END "
                            "AS audio) FROM segments")


def export_jsonl(dataset: str | os.PathLike, out: Path) -> ExportResult:
    """One JSON object per row, every column; audio keeps its path but not its bytes (JSON has no binary)."""
    con = connect_readonly(dataset)
    rows = con.execute("SELECT count(*) FROM segments").fetchone()[0]
    with atomic_output(out) as tmp:
        con.execute(f"COPY ({ROWS_WITHOUT_AUDIO_BYTES}) TO '{_sql_path(tmp)}' (FORMAT json)")
    return ExportResult([out], rows, [])


def export_hf(dataset: str | os.PathLike, out: Path) -> ExportResult:
    """Parquet that `datasets.load_dataset("parquet", ...)` loads, audio typed as `Audio` when embedded.

    `out` ending in .parquet: one file. Otherwise a folder in the Hub's layout
    (`data/train-00000-of-00002.parquet`, one per input file) with its dataset
    card (README.md, dataset_card.py), so `load_dataset(folder)` finds the
    split too and the folder can be uploaded as it is.
    """
    files = dataset_files(dataset)
    con = connect_readonly(dataset)
    has_audio = con.execute("SELECT count(*) FROM segments WHERE audio.bytes IS NOT NULL").fetchone()[0] > 0
    schema = SEGMENT_SCHEMA if has_audio else SEGMENT_SCHEMA.remove(SEGMENT_SCHEMA.get_field_index("audio"))
    metadata = dict(pq.read_schema(files[0]).metadata or {})
    metadata.pop(HF_METADATA_KEY, None)
    if has_audio:
        metadata[HF_METADATA_KEY] = json.dumps(HF_AUDIO_FEATURES).encode()
    schema = schema.with_metadata(metadata)
    row_group = HF_AUDIO_ROW_GROUP if has_audio else 100_000
    if out.suffix == ".parquet":
        targets = [(out, files)]
    else:
        targets = [(out / "data" / f"train-{i:05d}-of-{len(files):05d}.parquet", [f]) for i, f in enumerate(files)]
    rows = 0
    for target, sources in targets:
        with atomic_output(target) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for source in sources:
                for table in current_schema_batches(source, row_group):
                    table = table.select(schema.names).cast(schema)
                    writer.write_table(table, row_group_size=row_group)
                    rows += table.num_rows
    paths = [t for t, _ in targets]
    skipped = []
    if out.suffix != ".parquet":
        # An export of fewer files into the same folder left the last one's extra files behind, which the
        # Hub's glob read as more rows (or as files of another schema, which `load_dataset` failed on).
        for stale in set((out / "data").glob("train-*-of-*.parquet")) - set(paths):
            if HF_SHARD_NAME.fullmatch(stale.name):
                stale.unlink()
        card_path = out / "README.md"
        if is_own_card(card_path):
            card = dataset_card(describe_dataset(dataset), rows, "data/train-*.parquet", has_audio)
            with atomic_output(card_path) as tmp:
                tmp.write_text(card, encoding="utf-8")
            paths.append(card_path)
        else:
            skipped.append(f"{card_path}: kept, as a card omni-caption did not write (it lacks the line that marks "
                           f"the cards omni-caption writes)")
    return ExportResult(paths, rows, skipped)


def export_subtitles(dataset: str | os.PathLike, out_dir: Path, fmt: str) -> ExportResult:
    """One .srt or .vtt per recording from its transcripts (captions where there is none); error rows skipped.

    `out_dir` named as that format's file (`talk.srt`) is that one file, for a dataset of one recording: it was
    a folder of that name, holding the file."""
    if fmt not in ("srt", "vtt"):
        raise ValueError(f"unknown subtitle format {fmt!r}")
    render, suffix = (to_srt, ".srt") if fmt == "srt" else (to_vtt, ".vtt")
    con = connect_readonly(dataset)
    paths = [p for (p,) in con.execute("SELECT DISTINCT source_path FROM segments WHERE status = 'ok'").fetchall()]
    names = subtitle_names(paths, suffix)
    named = out_dir.suffix.lower()
    if named in (".srt", ".vtt") and named != suffix and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is named as {named}, but --format {fmt} writes {suffix}")
    if is_subtitle_file(out_dir, fmt):
        if len(paths) > 1:
            raise ValueError(f"--out {out_dir} is one {suffix} file, but {len(paths)} recordings have rows: give a "
                             f"folder, for one {suffix} per recording")
        out_dir, names = out_dir.parent, {path: out_dir.name for path in paths}
    cursor = con.execute("SELECT source_path, start_s, end_s, transcript, caption, speaker FROM segments "
                         "WHERE status = 'ok' ORDER BY source_path, start_s, segment_index")
    written, cues_total, skipped = [], 0, []
    for source_path, rows in groupby(iter_rows(cursor), key=lambda r: r[0]):
        cues = cues_from_rows(r[1:] for r in rows)
        if not cues:
            skipped.append(f"{source_path}: no transcript or caption text")
            continue
        target = out_dir / names[source_path]
        with atomic_output(target) as tmp:
            tmp.write_text(render(cues), encoding="utf-8")
        written.append(target)
        cues_total += len(cues)
    return ExportResult(written, cues_total, skipped)


def is_subtitle_file(out: Path, fmt: str) -> bool:
    """Whether `out` names one subtitle file of `fmt`, not a folder of them."""
    return out.suffix.lower() == f".{fmt}" and not out.is_dir()


def iter_rows(cursor, size: int = 10_000) -> Iterator[tuple]:
    while rows := cursor.fetchmany(size):
        yield from rows
