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

from .migrations import table_version, upgrade_rows, version_from_metadata
from .segment_table import SCHEMA_VERSION, SEGMENT_SCHEMA, SegmentRow, rows_to_table

METADATA_PREFIX = "omni_caption."
ROW_GROUP_ROWS = 131_072
HF_METADATA_KEY = b"huggingface"
HF_AUDIO_FEATURES = {"info": {"features": {"audio": {"_type": "Audio"}}}}


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


def write_table_atomic(table: pa.Table, path: str | os.PathLike, info: DatasetInfo | None = None) -> Path:
    """Write `table` to `path` so that `path` is either absent/old or complete."""
    path = Path(path)
    table = table.cast(SEGMENT_SCHEMA)
    metadata = dict(table.schema.metadata or {})
    if info is not None:
        metadata.update(info.to_metadata())
    if table.num_rows and table.column("audio").null_count < table.num_rows:
        # Embedded audio: tell Hugging Face `datasets` the column is an Audio feature.
        metadata[HF_METADATA_KEY] = json.dumps(HF_AUDIO_FEATURES).encode()
    table = table.replace_schema_metadata(metadata)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            # Dictionary encoding keeps the repeated recording-level columns cheap.
            # Row groups of 128k rows: DuckDB scans them in parallel and skips them by statistics.
            pq.write_table(table, handle, compression="zstd", use_dictionary=True, row_group_size=ROW_GROUP_ROWS)
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
    """The output and its work in progress.

    `<out>.parts/` holds one atomic Parquet part per finished group of
    recordings and stage; each part carries its own manifest (stage, tasks and
    their config hashes, recordings) in its key-value metadata, so data and
    manifest can never disagree. At the end, everything is merged into the
    final output: one file, or with a folder `--out`, shards of N rows.
    """

    def __init__(self, out_path: str | os.PathLike, rows_per_shard: int = 1_000_000):
        self.out_path = Path(out_path)
        self.sharded = str(out_path).endswith(os.sep) or self.out_path.is_dir()
        self.parts_dir = self.out_path.with_name(self.out_path.name + ".parts")
        self.rows_per_shard = rows_per_shard

    def part_paths(self) -> list[Path]:
        if not self.parts_dir.exists():
            return []
        return sorted(self.parts_dir.glob("part-*.parquet"))

    def final_paths(self) -> list[Path]:
        if self.sharded:
            return sorted(self.out_path.glob("shard-*.parquet")) if self.out_path.is_dir() else []
        return [self.out_path] if self.out_path.is_file() else []

    def write_part(self, table: pa.Table, manifest: dict | None = None) -> Path:
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        existing = self.part_paths()
        index = int(existing[-1].stem.split("-")[1]) + 1 if existing else 0
        info = DatasetInfo(tool_version=(manifest or {}).get("tool_version", "unknown"), run_config=manifest or {})
        return write_table_atomic(table, self.parts_dir / f"part-{index:06d}.parquet", info)

    def existing_rows(self) -> list[SegmentRow]:
        """Rows already written, oldest first: the previous final output, then the parts."""
        rows: list[SegmentRow] = []
        for path in self.final_paths() + self.part_paths():
            rows += read_rows(path)
        return rows

    def finalize(self, rows: list[SegmentRow], info: DatasetInfo) -> list[Path]:
        """Write the final output atomically, then drop the parts it supersedes."""
        table = rows_to_table(rows)
        if self.sharded:
            self.out_path.mkdir(parents=True, exist_ok=True)
            old = set(self.final_paths())
            written = []
            for i, start in enumerate(range(0, max(table.num_rows, 1), self.rows_per_shard)):
                shard = table.slice(start, self.rows_per_shard)
                written.append(write_table_atomic(shard, self.out_path / f"shard-{i:05d}.parquet", info))
            for stale in old - set(written):
                stale.unlink()
        else:
            written = [write_table_atomic(table, self.out_path, info)]
        self.clear_parts()
        return written

    def clear_parts(self) -> None:
        for part in self.part_paths():
            part.unlink()
        try:
            self.parts_dir.rmdir()
        except OSError:
            pass

    def clear(self) -> None:
        """`--overwrite`: forget the previous output and any work in progress."""
        for path in self.final_paths():
            path.unlink()
        self.clear_parts()


def read_rows(path: str | os.PathLike) -> list[SegmentRow]:
    """Rows of one Parquet file, upgraded to the current schema whatever version wrote them."""
    table = pq.read_table(path)
    return [SegmentRow.from_dict(row) for row in upgrade_rows(table.to_pylist(), table_version(table))]


def read_dataset(path: str | os.PathLike) -> tuple[pa.Table, DatasetInfo]:
    """A file, or a folder of shards (their metadata is the same: the first one's is returned)."""
    path = Path(path)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    metadata = pq.read_schema(files[0]).metadata if files else None
    rows = [row for f in files for row in read_rows(f)]
    return rows_to_table(rows), DatasetInfo.from_metadata(metadata)
