"""The output and its work in progress: parts while a run goes on, the final file or shards at the end.

`<out>.parts/` holds one atomic Parquet part per finished group of recordings
and stage; each part carries its own manifest (stage, tasks and their config
hashes, recordings) in its key-value metadata, so data and manifest can never
disagree. At the end everything is merged into the final output, a chunk of
recordings at a time: one file, or with a folder `--out`, shards of N rows.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .duckdb_views import NotADataset, check_dataset_file
from .migrations import segment_rows, version_from_metadata
from .parquet_store import (SEGMENT_SCHEMA, AtomicParquetWriter, DatasetInfo, fsync_dir, schema_with_metadata,
                            read_rows, write_table_atomic)
from .segment_table import SegmentRow, rows_to_table
from .stored_rows import StoredRows

READ_BATCH_ROWS = 65_536
SHARD_GLOB = "shard-*.parquet"  # a sharded output's files, as `shard-00000.parquet`


class PartStore:
    """Where a run's rows live: the previous output first, then this run's parts, in write order."""

    def __init__(self, out_path: str | os.PathLike, rows_per_shard: int = 1_000_000):
        self.out_path = Path(out_path)
        self.sharded = str(out_path).endswith(os.sep) or self.out_path.is_dir()
        if self.out_path.is_symlink():  # the dataset is where the link points: a rename would replace the link,
            self.out_path = Path(os.path.realpath(self.out_path))  # and set-aside shards cross file systems
        self.parts_dir = self.out_path.with_name(self.out_path.name + ".parts")
        self.rows_per_shard = rows_per_shard

    def part_paths(self) -> list[Path]:
        return self._in_parts_dir("part")

    def base_paths(self) -> list[Path]:
        """Old shards set aside by a sharded finalize that was interrupted: they are older than the shards."""
        return self._in_parts_dir("base")

    def _in_parts_dir(self, prefix: str) -> list[Path]:
        return sorted(self.parts_dir.glob(f"{prefix}-*.parquet")) if self.parts_dir.exists() else []

    def final_paths(self) -> list[Path]:
        if self.sharded:
            return sorted(self.out_path.glob(SHARD_GLOB)) if self.out_path.is_dir() else []
        return [self.out_path] if self.out_path.is_file() else []

    def stored_paths(self) -> list[Path]:
        """Every file holding rows, oldest first."""
        return self.base_paths() + self.final_paths() + self.part_paths()

    def has_unfinished_work(self) -> bool:
        return bool(self.part_paths() or self.base_paths())

    def write_part(self, table: pa.Table, manifest: dict | None = None) -> Path:
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        index = _next_index(self.part_paths())
        info = DatasetInfo(tool_version=(manifest or {}).get("tool_version", "unknown"), run_config=manifest or {})
        return write_table_atomic(table, self.parts_dir / f"part-{index:06d}.parquet", info)

    def stored(self) -> StoredRows:
        """An index of every stored row, for resuming and merging without reading whole rows (damaged parts
        left out: their work is done again)."""
        damaged = self.damaged_parts()
        return StoredRows([path for path in self.stored_paths() if path not in damaged])

    def damaged_parts(self) -> dict[Path, str]:
        """Parts that cannot be read, with why. Each was whole when renamed into place; a copy cut short or a
        disk's fault can still damage one, and every later run stopped on a reader's 'magic bytes' error."""
        damaged = {}
        for path in self.part_paths():
            try:
                check_dataset_file(path)
            except (NotADataset, OSError, pa.ArrowException) as exc:
                damaged[path] = str(exc)
        return damaged

    def set_aside_damaged_parts(self) -> list[str]:
        """Move damaged parts to `<out>.damaged/` (kept for a look, out of the way of every run), one line each."""
        lines = []
        for path, why in self.damaged_parts().items():
            aside = self.out_path.with_name(self.out_path.name + ".damaged")
            aside.mkdir(exist_ok=True)
            os.replace(path, aside / path.name)
            lines.append(f"{why}: set aside in {aside}/, and the work it held is done again")
        return lines

    def existing_rows(self) -> list[SegmentRow]:
        """All rows already written, oldest first, as objects: for small datasets and tests."""
        return [row for path in self.stored_paths() for row in read_rows(path)]

    def final_row_chunks(self, batch_rows: int = READ_BATCH_ROWS,
                         columns: Sequence[str] | None = None) -> Iterator[list[SegmentRow]]:
        """The final output's rows, a batch at a time; with `columns` (of a current-schema output), only those are
        read and the rest take their defaults: counting a million rows need not read their text and audio."""
        for path in self.final_paths():
            parquet = pq.ParquetFile(path)
            version = version_from_metadata(parquet.schema_arrow.metadata)
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
                yield segment_rows(batch, version)

    def has_audio(self) -> bool:
        """Whether any stored row embeds audio (from the Parquet statistics where the writer left them)."""
        for path in self.stored_paths():
            meta = pq.ParquetFile(path).metadata
            for g in range(meta.num_row_groups):
                group = meta.row_group(g)
                for c in range(group.num_columns):
                    column = group.column(c)
                    if column.path_in_schema != "audio.bytes":
                        continue
                    stats = column.statistics
                    if stats is None or not stats.has_null_count or stats.null_count < group.num_rows:
                        return True
        return False

    def holds_exactly(self, info: DatasetInfo, audio: bool) -> bool:
        """The output is whole, no part waits to be merged into it, and each of its files has the schema and
        metadata `finalize_chunks(..., info, audio)` would write: finalizing the same rows again changes nothing."""
        finals = self.final_paths()
        if not finals or self.part_paths() or self.base_paths():
            return False
        schema = schema_with_metadata(SEGMENT_SCHEMA, info, audio)
        for path in finals:
            stored = pq.read_schema(path)  # Parquet names a list's item `element`: equals() looks past that
            if not (stored.equals(schema) and stored.metadata == schema.metadata):
                return False
        return True

    def finalize(self, rows: Sequence[SegmentRow], info: DatasetInfo) -> list[Path]:
        return self.finalize_chunks([rows], info, audio=any(r.audio and r.audio.get("bytes") for r in rows))

    def finalize_chunks(self, chunks: Iterable[Sequence[SegmentRow]], info: DatasetInfo,
                        audio: bool = False) -> list[Path]:
        """Write the final output from chunks of rows in order, then drop the parts it supersedes.

        The chunks may be read from the stored files themselves: nothing
        stored is replaced until every chunk is written. `audio`: the rows
        embed audio (Hugging Face `datasets` is told so in the file's schema).
        """
        schema = schema_with_metadata(SEGMENT_SCHEMA, info, audio)
        if not self.sharded:
            for stale in self.out_path.parent.glob(f".{glob.escape(self.out_path.name)}.*.tmp"):
                stale.unlink()  # from a finalize that died before its rename: we hold the output lock
            with AtomicParquetWriter(self.out_path, schema) as writer:
                for chunk in chunks:
                    writer.write(rows_to_table(list(chunk)))
            self.clear_parts()
            return [self.out_path]
        self.out_path.mkdir(parents=True, exist_ok=True)
        for stale in self.out_path.glob(".shard-*.tmp"):
            stale.unlink()  # from a finalize that died before its commit: we hold the output lock
        shards = self._write_shards(chunks, schema)
        self._commit_shards(shards)
        return [s.path for s in shards]

    def _write_shards(self, chunks: Iterable[Sequence[SegmentRow]], schema: pa.Schema) -> list[AtomicParquetWriter]:
        shards: list[AtomicParquetWriter] = []
        try:
            for chunk in chunks:
                table = rows_to_table(list(chunk))
                while table.num_rows:
                    if not shards or shards[-1].rows >= self.rows_per_shard:
                        shards.append(self._new_shard(len(shards), schema))
                    room = self.rows_per_shard - shards[-1].rows
                    shards[-1].write(table.slice(0, room))
                    table = table.slice(room)
            if not shards:  # no rows: one empty shard still says what the columns are
                shards.append(self._new_shard(0, schema))
            for shard in shards:
                shard.commit()
        except BaseException:
            for shard in shards:
                shard.abandon()
            raise
        return shards

    def _new_shard(self, index: int, schema: pa.Schema) -> AtomicParquetWriter:
        return AtomicParquetWriter(self.out_path / f"shard-{index:05d}.parquet", schema, rename=False)

    def _commit_shards(self, shards: list[AtomicParquetWriter]) -> None:
        """Swap the new shards in so that a crash at any moment loses nothing.

        The old shards first move into the parts folder as `base-*` (read
        before the shards and the parts), then the new ones take their names,
        then the parts go. Every stored row stays somewhere a rerun reads,
        in an order that merges to the same result.
        """
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        index = _next_index(self.base_paths())
        for old in self.final_paths():
            os.replace(old, self.parts_dir / f"base-{index:05d}.parquet")
            index += 1
        fsync_dir(self.parts_dir)
        fsync_dir(self.out_path)
        for shard in shards:
            os.replace(shard.tmp_path, shard.path)
        fsync_dir(self.out_path)
        self.clear_parts()

    def clear_parts(self) -> None:
        # The set-aside old shards go first: once they are gone, what is left merges to the new output.
        for path in self.base_paths() + self.part_paths():
            path.unlink()
        try:
            self.parts_dir.rmdir()
        except OSError:
            pass

    def foreign_entries(self) -> list[str]:
        """What a sharded output's folder holds besides its shards and their temp files (hidden files aside)."""
        if not self.sharded or not self.out_path.is_dir():
            return []
        return sorted(p.name + ("/" if p.is_dir() else "") for p in self.out_path.iterdir()
                      if not p.name.startswith(".") and not fnmatch(p.name, SHARD_GLOB))

    def check_outputs(self) -> None:
        """Raise NotADataset if an existing output is not one of ours: it would be read, then replaced."""
        for path in self.final_paths():
            check_dataset_file(path)

    def clear(self) -> None:
        """`--overwrite`: forget the previous output and any work in progress."""
        for path in self.final_paths():
            path.unlink()
        self.clear_parts()


@dataclass(frozen=True)
class WorkInProgress:
    """Parts a run has committed to `<out>.parts/` and not yet merged into `<out>`."""

    parts_dir: Path
    parts: int
    recordings: int  # distinct recordings with work in those parts

    def describe(self) -> str:
        return (f"{self.parts} committed part{'s' if self.parts != 1 else ''} ({self.recordings} "
                f"recording{'s' if self.recordings != 1 else ''}) in {self.parts_dir}/ "
                f"{'are' if self.parts != 1 else 'is'} not merged yet: "
                "the run merges them when it ends, and the same command finishes a run that was stopped; "
                f"`query {self.parts_dir}/` shows them now, a row per stage")


def work_in_progress(out_path: str | os.PathLike) -> WorkInProgress | None:
    """What a running, stopped or crashed run has committed to `out_path` and not merged, or None."""
    store = PartStore(out_path)
    paths = store.part_paths()
    if not paths:
        return None
    recordings = set()
    for path in paths:
        try:
            manifest = DatasetInfo.from_metadata(pq.read_schema(path).metadata).run_config
        except (OSError, pa.ArrowException):  # being renamed into place right now: counted next time
            continue
        recordings.update(r.get("key") or r.get("source_path") for r in manifest.get("recordings", []))
    return WorkInProgress(store.parts_dir, len(paths), len(recordings))


def _next_index(numbered: list[Path]) -> int:
    """The number after the last of sorted `name-NNNN.parquet` files."""
    return int(numbered[-1].stem.split("-")[1]) + 1 if numbered else 0
