"""Atomic Parquet writing: parts while a run is in progress, one file at the end.

Every file appears under its final name only complete (write temp, fsync,
rename), so a crash at any moment leaves either the old state or the new one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .segment_table import SCHEMA_VERSION, SEGMENT_SCHEMA, merge_stage_rows, rows_to_table, table_to_rows

METADATA_PREFIX = "omni_caption."


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


def schema_version_of(path: str | os.PathLike) -> str | None:
    metadata = pq.read_schema(path).metadata or {}
    value = metadata.get(f"{METADATA_PREFIX}schema_version".encode())
    return value.decode() if value else None


def write_table_atomic(table: pa.Table, path: str | os.PathLike, info: DatasetInfo | None = None) -> Path:
    """Write `table` to `path` so that `path` is either absent/old or complete."""
    path = Path(path)
    table = table.cast(SEGMENT_SCHEMA)
    if info is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **info.to_metadata()})
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            # Dictionary encoding keeps the repeated recording-level columns cheap.
            pq.write_table(table, handle, compression="zstd", use_dictionary=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
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


class PartStore:
    """`<out>.parts/`: one atomic Parquet part per finished batch, compacted at the end."""

    def __init__(self, out_path: str | os.PathLike):
        self.out_path = Path(out_path)
        self.parts_dir = self.out_path.with_name(self.out_path.name + ".parts")

    def part_paths(self) -> list[Path]:
        if not self.parts_dir.exists():
            return []
        return sorted(self.parts_dir.glob("part-*.parquet"))

    def write_part(self, table: pa.Table) -> Path:
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        index = len(self.part_paths())
        return write_table_atomic(table, self.parts_dir / f"part-{index:06d}.parquet")

    def read_parts(self) -> pa.Table:
        tables = [pq.read_table(p).cast(SEGMENT_SCHEMA) for p in self.part_paths()]
        return pa.concat_tables(tables) if tables else SEGMENT_SCHEMA.empty_table()

    def compact(self, info: DatasetInfo) -> Path:
        """Merge every stage's parts into the final file, then drop the parts."""
        rows = merge_stage_rows(table_to_rows(self.read_parts()))
        final = write_table_atomic(rows_to_table(rows), self.out_path, info)
        for part in self.part_paths():
            part.unlink()
        try:
            self.parts_dir.rmdir()
        except OSError:
            pass
        return final


def read_dataset(path: str | os.PathLike) -> tuple[pa.Table, DatasetInfo]:
    table = pq.read_table(path)
    return table, DatasetInfo.from_metadata(table.schema.metadata)
