"""The rows a store holds, read a few recordings at a time.

A run's output can hold millions of rows and, with --embed-audio, many
gigabytes of audio. Merging it as Python objects all at once cost 110 s and
9.6 GiB per million rows and could not hold embedded audio at all. Here only
the key columns are read up front: an index of which rows (file, row) belong
to which recording. The merge then reads the whole rows of one chunk of
recordings at a time, and a resume decides what is done from four columns.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .migrations import segment_rows, version_from_metadata
from .segment_table import SegmentRow

STATE_COLUMNS = ["source_sha256", "source_path", "config_hash", "status"]
ROW_GROUP_CACHE_BYTES = 256 << 20


@dataclass(frozen=True)
class RowState:
    """What resuming needs of a row: whose it is, which task configurations it holds, and whether it failed."""

    source_sha256: str | None
    source_path: str
    config_hash: str | None
    status: str


def recording_keys(sha256: pa.Array, source_path: pa.Array) -> pa.Array:
    """The resume key of each row (as `recording_key`): the sha256, or `path:<source_path>` when unreadable."""
    by_path = pc.binary_join_element_wise(pa.scalar("path:"), source_path.cast(pa.string()), "")
    return pc.if_else(pc.is_null(sha256), by_path, sha256.cast(pa.string()))


class StoredRows:
    """An index over Parquet files in write order (oldest first): recording key -> (file, rows)."""

    def __init__(self, files: Iterable[str | os.PathLike], cache_bytes: int = ROW_GROUP_CACHE_BYTES):
        self.files = [Path(f) for f in files]
        self._cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple[int, int], pa.Table] = OrderedDict()
        self._cached_bytes = 0  # kept as a sum: summing the tables' sizes on each read was quadratic in the parts
        self._versions: list[str] = []
        self._group_starts: list[np.ndarray] = []
        self._states: list[pa.Table] = []
        self._where: list[dict[str, np.ndarray]] = []
        self._paths: dict[str, set[str]] = {}
        self._latest_paths: dict[str, set[str]] = {}  # key -> its paths in the last file that holds it
        self._last_file: dict[str, int] = {}  # key -> the index of that file
        for path in self.files:
            self._index(pq.ParquetFile(path))

    def _index(self, parquet: pq.ParquetFile) -> None:
        meta = parquet.metadata
        self._versions.append(version_from_metadata(parquet.schema_arrow.metadata))
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self._group_starts.append(np.cumsum([0] + sizes))
        states = parquet.read(columns=STATE_COLUMNS)
        keys = recording_keys(states.column("source_sha256"), states.column("source_path")).combine_chunks()
        self._states.append(states)
        where: dict[str, np.ndarray] = {}
        if len(keys):
            grouped = pa.table({"key": keys, "row": pa.array(np.arange(len(keys)))}).group_by(
                "key", use_threads=False).aggregate([("row", "list")])
            for key, rows in zip(grouped.column("key").to_pylist(), grouped.column("row_list").to_numpy()):
                where[key] = np.sort(rows)
            pairs = pa.table({"key": keys, "path": states.column("source_path")}).group_by(
                ["key", "path"], use_threads=False).aggregate([])
            in_this_file: dict[str, set[str]] = {}
            for key, path in zip(pairs.column("key").to_pylist(), pairs.column("path").to_pylist()):
                self._paths.setdefault(key, set()).add(path)
                in_this_file.setdefault(key, set()).add(path)
            self._latest_paths.update(in_this_file)
        self._last_file.update(dict.fromkeys(where, len(self._where)))
        self._where.append(where)

    def keys(self) -> list[str]:
        return list(self._paths)

    def stored_paths(self, key: str) -> set[str]:
        """The source paths the recording's rows were written under."""
        return self._paths.get(key, set())

    def latest_paths(self, key: str) -> set[str]:
        """The source paths of the recording in the last file that holds it: where the last run put it
        (an older file may still name the path it had before it was moved)."""
        return self._latest_paths.get(key, set())

    def last_file(self, key: str) -> int:
        """The write-order index of the last file holding the recording (-1: none)."""
        return self._last_file.get(key, -1)

    def row_count(self, key: str) -> int:
        return sum(len(where.get(key, ())) for where in self._where)

    def states(self) -> Iterator[RowState]:
        """Every row's state in write order; a row that repeats the one before it is left out (same answer, fewer)."""
        previous = None
        for states in self._states:
            columns = [states.column(name).to_pylist() for name in STATE_COLUMNS]
            for values in zip(*columns):
                if values != previous:
                    previous = values
                    yield RowState(*values)

    def rows_of(self, keys: Iterable[str]) -> list[SegmentRow]:
        """The recordings' whole rows, upgraded to the current schema, in write order."""
        keys = list(keys)
        out: list[SegmentRow] = []
        for f, where in enumerate(self._where):
            hits = [where[k] for k in keys if k in where]
            if not hits:
                continue
            out += segment_rows(self._take(f, np.sort(np.concatenate(hits))), self._versions[f])
        return out

    def _take(self, f: int, rows: np.ndarray) -> pa.Table:
        starts = self._group_starts[f]
        groups = np.searchsorted(starts, rows, side="right") - 1
        pieces = []
        for group in np.unique(groups):
            table = self._row_group(f, int(group))
            pieces.append(table.take(pa.array(rows[groups == group] - starts[group])))
        return pa.concat_tables(pieces)

    def _row_group(self, f: int, group: int) -> pa.Table:
        """Row groups are read whole and kept a while: the next chunk of recordings usually sits in the same one."""
        key = (f, group)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        table = pq.ParquetFile(self.files[f]).read_row_group(group)
        self._cache[key] = table
        self._cached_bytes += table.nbytes
        while len(self._cache) > 1 and self._cached_bytes > self._cache_bytes:
            self._cached_bytes -= self._cache.popitem(last=False)[1].nbytes
        return table
