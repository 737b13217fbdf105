"""Atomic Parquet writing and reading back, whatever schema version wrote the file.

Every file appears under its final name only complete (write temp, fsync,
rename), so a crash at any moment leaves either the old state or the new one.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .migrations import segment_rows, table_version, upgrade_rows, version_from_metadata
from .segment_table import SCHEMA_VERSION, SEGMENT_SCHEMA, SegmentRow

METADATA_PREFIX = "omni_caption."
ROW_GROUP_ROWS = 131_072
ROW_GROUP_BYTES = 256 << 20
HF_METADATA_KEY = b"huggingface"
HF_AUDIO_FEATURES = {"info": {"features": {"audio": {"_type": "Audio"}}}}
PANDAS_METADATA_KEY = b"pandas"
# pandas reads an int column with nulls as float64 (an error row has no segment_index): this names the
# nullable Int32 instead, which pyarrow's to_pandas (pd.read_parquet) honours. Columns not named keep their
# default conversion; DuckDB and `datasets` ignore the key.
PANDAS_COLUMNS = {"index_columns": [], "column_indexes": [],
                  "columns": [{"name": "segment_index", "field_name": "segment_index", "pandas_type": "int32",
                               "numpy_type": "Int32", "metadata": None}]}


@dataclass(frozen=True)
class DatasetInfo:
    """Provenance stored in the Parquet key-value metadata."""

    tool_version: str
    run_config: dict

    def to_metadata(self) -> dict[bytes, bytes]:
        return {
            f"{METADATA_PREFIX}schema_version".encode(): SCHEMA_VERSION.encode(),
            f"{METADATA_PREFIX}tool_version".encode(): self.tool_version.encode(),
            f"{METADATA_PREFIX}run_config".encode(): json.dumps(self.run_config, sort_keys=True).encode(),
        }

    @classmethod
    def from_metadata(cls, metadata: dict[bytes, bytes] | None) -> "DatasetInfo":
        metadata = metadata or {}
        get = lambda key, default: metadata.get(f"{METADATA_PREFIX}{key}".encode(), default)  # noqa: E731
        return cls(
            tool_version=get("tool_version", b"unknown").decode(),
            run_config=json.loads(get("run_config", b"{}").decode()),
        )


def schema_version_of(path: str | os.PathLike) -> str:
    return version_from_metadata(pq.read_schema(path).metadata)


def schema_with_metadata(schema: pa.Schema, info: DatasetInfo | None, audio: bool) -> pa.Schema:
    metadata = dict(schema.metadata or {})
    metadata[PANDAS_METADATA_KEY] = json.dumps(PANDAS_COLUMNS).encode()
    if info is not None:
        metadata.update(info.to_metadata())
    if audio:
        # Embedded audio: tell Hugging Face `datasets` the column is an Audio feature.
        metadata[HF_METADATA_KEY] = json.dumps(HF_AUDIO_FEATURES).encode()
    return schema.with_metadata(metadata)


def write_table_atomic(table: pa.Table, path: str | os.PathLike, info: DatasetInfo | None = None) -> Path:
    """Write `table` to `path` so that `path` is either absent/old or complete."""
    path = Path(path)
    table = table.cast(SEGMENT_SCHEMA)
    audio = bool(table.num_rows) and table.column("audio").null_count < table.num_rows
    with AtomicParquetWriter(path, schema_with_metadata(SEGMENT_SCHEMA, info, audio)) as writer:
        writer.write(table)
    return path


class AtomicParquetWriter:
    """A Parquet file written in pieces under a temporary name, renamed into place only complete.

    Rows are gathered into row groups of up to 128k rows or 256 MiB: DuckDB
    scans row groups in parallel and skips them by statistics, and the cap
    keeps a row group of embedded audio from filling memory.
    """

    def __init__(self, path: Path, schema: pa.Schema, rename: bool = True):
        self.path = path
        self.schema = schema
        self.rename = rename
        self.rows = 0
        self._pending: list[pa.Table] = []
        fd, self.tmp_path = temp_file_beside(path)
        self._handle = os.fdopen(fd, "wb")
        # Dictionary encoding keeps the repeated recording-level columns cheap.
        self._writer = pq.ParquetWriter(self._handle, schema, compression="zstd", use_dictionary=True)

    def write(self, table: pa.Table) -> None:
        self._pending.append(table.cast(self.schema))
        self.rows += table.num_rows
        if sum(t.num_rows for t in self._pending) >= ROW_GROUP_ROWS or \
                sum(t.nbytes for t in self._pending) >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending), row_group_size=ROW_GROUP_ROWS)
            self._pending = []

    def commit(self) -> Path:
        """Close and fsync; with `rename`, move into place (else the caller renames `tmp_path` later)."""
        self._flush()
        self._writer.close()
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        if self.rename:
            os.replace(self.tmp_path, self.path)
            fsync_dir(self.path.parent)
        return self.path

    def abandon(self) -> None:
        try:
            self._writer.close()
        except Exception:
            pass  # a writer that failed mid-write may fail to close too: the file goes anyway
        finally:
            self._handle.close()
            self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> "AtomicParquetWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:
            self.abandon()
            return
        try:
            self.commit()
        except BaseException:
            self.abandon()
            raise


def temp_file_beside(path: Path) -> tuple[int, Path]:
    """An open temp file in `path`'s folder, to be renamed over `path`. Created as any new file is, mode 0666
    less the umask (the kernel applies it, as to the tiny models' staging folders): mkstemp's 0600 would leave
    a team's dataset readable by its writer alone."""
    while True:
        tmp = path.parent / f".{cut_to_bytes(path.name, NAME_MAX - 18)}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:  # another writer drew the same name: draw again
            continue


NAME_MAX = 255  # bytes in one file name, on Linux's file systems


def cut_to_bytes(name: str, max_bytes: int, keep_end: bool = False) -> str:
    """`name` cut, a character at a time, until the file system stores it in `max_bytes`; its last characters
    go, or with `keep_end` its first. A recording named to the limit still gets a temp name beside it."""
    while len(os.fsencode(name)) > max_bytes:
        name = name[1:] if keep_end else name[:-1]
    return name


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_rows(path: str | os.PathLike) -> list[SegmentRow]:
    """Rows of one Parquet file, upgraded to the current schema whatever version wrote them."""
    table = pq.read_table(path)
    return segment_rows(table, table_version(table))


def current_schema_batches(path: str | os.PathLike, batch_rows: int = 65_536) -> Iterator[pa.Table]:
    """A file's rows in batches, in the current schema: a current file as stored, older versions
    through the migrations."""
    parquet = pq.ParquetFile(path)
    version = table_version(parquet.schema_arrow.empty_table())
    for batch in parquet.iter_batches(batch_size=batch_rows):
        if version == SCHEMA_VERSION:
            yield pa.Table.from_batches([batch])
        else:
            yield pa.Table.from_pylist(upgrade_rows(batch.to_pylist(), version), schema=SEGMENT_SCHEMA)


def read_dataset(path: str | os.PathLike) -> tuple[pa.Table, DatasetInfo]:
    """A file, or a folder of shards, as one table in the current schema (their metadata is the same:
    the first one's is returned)."""
    path = Path(path)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    metadata = pq.read_schema(files[0]).metadata if files else None
    tables = [t.select(SEGMENT_SCHEMA.names).cast(SEGMENT_SCHEMA) for f in files for t in current_schema_batches(f)]
    return pa.concat_tables(tables) if tables else SEGMENT_SCHEMA.empty_table(), DatasetInfo.from_metadata(metadata)
