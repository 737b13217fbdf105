"""What a dataset holds: hours, counts, flags, errors and provenance, for `omni-caption info`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pyarrow.parquet as pq

from .duckdb_views import connect_readonly, dataset_files
from .parquet_store import DatasetInfo, schema_version_of
from .segment_table import ModelIds


@dataclass(frozen=True)
class DatasetSummary:
    files: list[str]
    schema_versions: list[str]  # one per distinct value across files (no key: "1", as the migrations read it)
    tool_versions: list[str]
    audio_hours: float  # of recordings with rows (status ok or partial)
    recordings: int
    recordings_ok: int
    recordings_error: int
    recordings_partial: int  # rows kept, some task failed (the errors list says which)
    segments: int  # rows with status ok
    flagged_segments: int
    flag_counts: dict[str, int] = field(default_factory=dict)  # 'truncated:caption' -> segments
    errors: list[tuple[str, str]] = field(default_factory=list)  # (source_path, one-line error)
    models: dict[str, list[str]] = field(default_factory=dict)  # task -> model ids used
    prompt_versions: list[str] = field(default_factory=list)
    languages: dict[str, int] = field(default_factory=dict)  # language -> segments
    # Recordings (not error rows) whose bytes another one of the dataset has: a corpus copied twice over. Each
    # shares its recording_id and rows with the first, and counts again in the hours.
    copies: int = 0


def describe_dataset(path: str | os.PathLike) -> DatasetSummary:
    files = dataset_files(path)
    schema_versions = sorted({schema_version_of(f) for f in files})
    tool_versions = sorted({DatasetInfo.from_metadata(pq.read_schema(f).metadata).tool_version for f in files})
    con = connect_readonly(path)
    recordings, ok, errors, partial, hours = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'ok'), count(*) FILTER (WHERE status = 'error'), "
        "count(*) FILTER (WHERE status = 'partial'), "
        "coalesce(sum(recording_duration_s) FILTER (WHERE status != 'error'), 0) / 3600 FROM recordings").fetchone()
    segments, flagged = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE len(flags) > 0) FROM segments WHERE status = 'ok'").fetchone()
    flag_counts = dict(con.execute(
        "SELECT flag, count(*) FROM (SELECT unnest(flags) AS flag FROM segments WHERE status = 'ok') "
        "GROUP BY flag ORDER BY count(*) DESC, flag").fetchall())
    error_list = con.execute(
        "SELECT source_path, coalesce(error, '') FROM recordings WHERE status != 'ok' ORDER BY source_path").fetchall()
    models = {}
    model_fields = {name for (name,) in con.execute(
        "SELECT unnest(struct_keys(models)) FROM (SELECT models FROM segments LIMIT 1)").fetchall()}
    for task in (t for t in ModelIds.__dataclass_fields__ if t in model_fields):  # older files lack `voice`
        used = [m for (m,) in con.execute(
            f"SELECT DISTINCT models.{task} FROM segments WHERE models.{task} IS NOT NULL ORDER BY 1").fetchall()]
        if used:
            models[task] = used
    prompt_versions = [v for (v,) in con.execute(
        "SELECT DISTINCT prompt_version FROM segments WHERE prompt_version IS NOT NULL ORDER BY 1").fetchall()]
    (copies,) = con.execute(
        "SELECT count(*) - count(DISTINCT recording_id) FROM recordings WHERE status != 'error'").fetchone()
    languages = dict(con.execute(
        "SELECT language, count(*) FROM segments WHERE status = 'ok' AND language IS NOT NULL "
        "GROUP BY language ORDER BY count(*) DESC, language").fetchall())
    return DatasetSummary(
        files=[str(f) for f in files], schema_versions=schema_versions, tool_versions=tool_versions,
        audio_hours=float(hours), recordings=recordings, recordings_ok=ok, recordings_error=errors,
        recordings_partial=partial,
        segments=segments, flagged_segments=flagged, flag_counts=flag_counts,
        errors=[(p, e) for p, e in error_list], models=models, prompt_versions=prompt_versions,
        languages=languages, copies=copies,
    )
