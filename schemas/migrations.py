"""Append-only schema migrations: every dataset ever written stays readable.

Each step upgrades a row (as a dict) from one version to the next. Rows are
upgraded when read back for resuming or merging; DuckDB views read mixed
versions directly (`union_by_name`). Never edit a step: add the next one.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from .segment_table import SCHEMA_VERSION, SegmentRow


def _v1_to_v2(row: dict) -> dict:
    # v2 keeps the raw transcript a guard replaced, and the guards' figures for every task.
    row = dict(row)
    row.setdefault("transcript_raw", None)
    scores = dict(row.get("scores") or {})
    for name in ("caption_compression_ratio", "reasoning_compression_ratio", "caption_temperature",
                 "transcript_temperature", "reasoning_temperature"):
        scores.setdefault(name, None)
    row["scores"] = scores
    return row


def _v2_to_v3(row: dict) -> dict:
    # v3 records the voiced audio's duration and source column, and which talker voiced it.
    row = dict(row)
    row.setdefault("summary_audio_duration_s", None)
    row.setdefault("summary_audio_source", None)
    row["models"] = {**(row.get("models") or {}), "voice": (row.get("models") or {}).get("voice")}
    return row


MIGRATIONS: dict[str, tuple[str, Callable[[dict], dict]]] = {
    "1": ("2", _v1_to_v2),
    "2": ("3", _v2_to_v3),
}


def version_from_metadata(metadata: dict[bytes, bytes] | None) -> str:
    value = (metadata or {}).get(b"omni_caption.schema_version")
    # Files without the key predate versioning: the first schema.
    return value.decode() if value else "1"


def table_version(table: pa.Table) -> str:
    return version_from_metadata(table.schema.metadata)


def segment_rows(records: pa.Table | pa.RecordBatch, version: str) -> list[SegmentRow]:
    """Rows a file of schema `version` holds, upgraded and made `SegmentRow`s."""
    return [SegmentRow.from_dict(row) for row in upgrade_rows(records.to_pylist(), version)]


def upgrade_rows(rows: list[dict], version: str) -> list[dict]:
    """Rows of schema `version`, upgraded step by step to the current version."""
    while version != SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise ValueError(f"dataset schema version {version!r} is newer than this omni-caption "
                             f"(reads up to {SCHEMA_VERSION}): upgrade omni-caption")
        version, step = MIGRATIONS[version]
        rows = [step(row) for row in rows]
    return rows
