"""DuckDB over a dataset: views `segments` and `recordings`, read-only queries."""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb

RECORDINGS_VIEW_SQL = """
CREATE VIEW recordings AS
SELECT
    any_value(recording_id) AS recording_id,
    source_path,
    any_value(source_sha256) AS source_sha256,
    any_value(recording_duration_s) AS recording_duration_s,
    count(*) FILTER (WHERE status = 'ok') AS segments,
    CASE WHEN bool_or(status = 'error') THEN 'error' WHEN bool_or(error IS NOT NULL) THEN 'partial'
         ELSE 'ok' END AS status,
    any_value(error) AS error,
    any_value(summary) AS summary,
    any_value(summary_reasoning) AS summary_reasoning,
    any_value(summary_audio_path) AS summary_audio_path,
    count(*) FILTER (WHERE len(flags) > 0) AS flagged_segments
FROM segments
GROUP BY source_path
"""

# Statement types that cannot change anything, on the database or on disk.
_READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}


class QueryRefused(ValueError):
    """A statement that could write was passed to a read-only query."""


class NotADataset(ValueError):
    """A file given as a dataset that is not Parquet, or is cut short."""


_PARQUET_MAGIC = b"PAR1"  # a Parquet file starts and ends with it; the footer is written last


def dataset_files(path: str | os.PathLike) -> list[Path]:
    """The Parquet files of a dataset: the file itself, or every *.parquet under a folder (as the views read).

    Each is checked to be whole Parquet, so that a wrong or half-copied file is named in one line
    instead of surfacing as a reader's error about magic bytes and a CREATE VIEW statement.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no dataset at {path}")
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"no .parquet files under {path}")
    for file in files:
        check_dataset_file(file)
    return files


# Columns every schema version has had: a Parquet file without them is someone else's.
DATASET_CORE_COLUMNS = frozenset({"recording_id", "source_path", "source_sha256", "status"})


def check_dataset_file(file: Path) -> None:
    """Raise NotADataset unless `file` is whole Parquet with a dataset's core columns (another tool's Parquet
    would otherwise fail as a DuckDB binder error about the `recordings` view)."""
    import pyarrow.parquet as pq

    check_whole_parquet(file)
    missing = DATASET_CORE_COLUMNS - set(pq.read_schema(file).names)
    if missing:
        raise NotADataset(f"{file} is Parquet but not an omni-caption dataset "
                          f"(no {', '.join(sorted(missing))} column{'s' if len(missing) > 1 else ''})")


def check_whole_parquet(file: Path) -> None:
    """Raise NotADataset unless `file` starts and ends as Parquet does."""
    size = file.stat().st_size
    with open(file, "rb") as handle:
        head = handle.read(4)
        handle.seek(max(0, size - 4))
        tail = handle.read(4)
    if head != _PARQUET_MAGIC or tail != _PARQUET_MAGIC or size < 12:
        why = "another kind of file" if head != _PARQUET_MAGIC else "cut short: it has no footer"
        raise NotADataset(f"{file} is not a whole Parquet file ({why})")


def connect_readonly(path: str | os.PathLike) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the dataset mounted as views; callers only read."""
    files = ", ".join(_file_literal(file) for file in dataset_files(path))
    con = duckdb.connect(":memory:")
    con.execute(f"CREATE VIEW segments AS SELECT * FROM read_parquet([{files}], union_by_name = true)")
    con.execute(RECORDINGS_VIEW_SQL)
    return con


def _file_literal(file: Path) -> str:
    """A SQL string DuckDB reads as this one file. Its reader globs every name it is given: `[1]` in a folder's
    name was a character class (no files found), and `runs*/` read every dataset whose folder starts so."""
    escaped = re.sub(r"([*?\[])", r"[\1]", str(file))  # each glob character as a class holding only itself
    return "'" + escaped.replace("'", "''") + "'"


def check_read_only(sql: str) -> None:
    statements = duckdb.extract_statements(sql)
    if not statements:
        raise QueryRefused("empty query")
    for statement in statements:
        kind = statement.type.name
        if kind == "CREATE" and not statement.query:
            continue  # DuckDB's own, not the user's: a PIVOT first makes an enum of the values it pivots on
        if kind not in _READ_ONLY_STATEMENTS:
            raise QueryRefused(f"only SELECT queries are allowed here (got {kind})")


def run_query(path: str | os.PathLike, sql: str) -> duckdb.DuckDBPyRelation:
    check_read_only(sql)
    con = connect_readonly(path)
    return con.sql(sql)
