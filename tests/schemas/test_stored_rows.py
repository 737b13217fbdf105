"""The stored-rows index and the chunked merge give exactly what reading everything at once gives."""

from __future__ import annotations

import itertools
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omni_caption.schemas import (SegmentRow, StoredRows, done_tasks, format_config_hash, merge_in_chunks,
                                  merge_rows, rows_to_table)
from omni_caption.schemas.parquet_store import read_rows

WANTED = {"caption": "c2", "transcript": "t1"}
SHAS = ["s0", "s1", "s2", None]  # None: an unreadable file, keyed by its path
PATHS = ["a.wav", "b/c.flac", "d.mp3"]


@st.composite
def written_row(draw) -> SegmentRow:
    sha = draw(st.sampled_from(SHAS))
    path = draw(st.sampled_from(PATHS))
    task = draw(st.sampled_from(["caption", "transcript"]))
    digest = draw(st.sampled_from({"caption": ["c1", "c2"], "transcript": ["t1"]}[task]))
    hashes = format_config_hash({task: digest})
    if draw(st.integers(0, 9)) == 0:
        return SegmentRow.error_row(path, f"boom {draw(st.integers(0, 3))}", sha256=sha, config_hash=hashes)
    index = draw(st.integers(0, 3))
    text = draw(st.sampled_from(["x", "y", "z"]))
    return SegmentRow(recording_id=sha, source_path=path, source_sha256=sha, recording_duration_s=40.0,
                      segment_index=index, start_s=index * 10.0, end_s=index * 10.0 + 10.0, config_hash=hashes,
                      **({"caption": text} if task == "caption" else {"transcript": text}))


def write_files(directory: Path, files: list[list[SegmentRow]], row_group_size: int) -> list[Path]:
    paths = []
    for i, rows in enumerate(files):
        path = directory / f"f{i:03d}.parquet"
        pq.write_table(rows_to_table(rows), path, row_group_size=row_group_size)
        paths.append(path)
    return paths


def key_of(row) -> str:
    return row.source_sha256 or f"path:{row.source_path}"


files_strategy = st.lists(st.lists(written_row(), max_size=12), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=files_strategy, row_group_size=st.integers(1, 5), cache_bytes=st.sampled_from([1, 1 << 20]),
       chunk_rows=st.integers(1, 30), pick=st.sets(st.sampled_from(SHAS)))
def test_chunked_merge_equals_merging_everything(tmp_path_factory, files, row_group_size, cache_bytes, chunk_rows,
                                                 pick):
    paths = write_files(tmp_path_factory.mktemp("store"), files, row_group_size)
    everything = [row for path in paths for row in read_rows(path)]
    stored = StoredRows(paths, cache_bytes=cache_bytes)

    keys = {key_of(r) for r in everything if r.source_sha256 in pick}
    assert stored.rows_of(keys) == [r for r in everything if key_of(r) in keys]  # write order kept
    assert done_tasks(stored.states(), WANTED) == done_tasks(everything, WANTED)
    assert done_tasks(stored.states(), WANTED, include_errors=False) == \
        done_tasks(everything, WANTED, include_errors=False)

    # Today's paths: s0 under two paths (identical files), s1 moved, s2 gone from the inputs.
    current = {"s0": ["a.wav", "z/copy.wav"], "s1": ["moved.wav"], "path:d.mp3": ["d.mp3"]}
    chunks = list(merge_in_chunks(stored, WANTED, current, chunk_rows=chunk_rows))
    assert list(itertools.chain(*chunks)) == merge_rows(everything, WANTED, current)
    unrestricted = list(itertools.chain(*merge_in_chunks(stored, WANTED, chunk_rows=chunk_rows)))
    assert sorted(unrestricted, key=repr) == sorted(merge_rows(everything, WANTED), key=repr)


def test_cache_stays_within_its_budget_and_results_do_not_depend_on_it(tmp_path):
    rows = [SegmentRow(recording_id=f"s{i}", source_path=f"{i:03d}.wav", source_sha256=f"s{i}",
                       recording_duration_s=1.0, segment_index=0, start_s=0.0, end_s=1.0, caption="w " * 200,
                       config_hash="caption=c2") for i in range(40)]
    (path,) = write_files(tmp_path, [rows], row_group_size=4)
    small = StoredRows([path], cache_bytes=1)
    for i in range(40):
        assert small.rows_of([f"s{i}"]) == [rows[i]]
        assert len(small._cache) == 1  # one row group alive: the budget is below any row group
    big = StoredRows([path])
    assert [r for i in range(40) for r in big.rows_of([f"s{i}"])] == rows


def test_the_caches_kept_size_is_the_size_of_what_it_holds_and_within_budget(tmp_path):
    rows = [SegmentRow(recording_id=f"s{i}", source_path=f"{i:03d}.wav", source_sha256=f"s{i}",
                       recording_duration_s=1.0, segment_index=0, start_s=0.0, end_s=1.0, caption="w " * (50 + i),
                       config_hash="caption=c2") for i in range(40)]
    paths = write_files(tmp_path, [rows[:20], rows[20:]], row_group_size=4)
    one_group = StoredRows(paths)._row_group(0, 0).nbytes
    stored = StoredRows(paths, cache_bytes=3 * one_group)
    for i in [*range(40), *range(39, -1, -3)]:
        assert stored.rows_of([f"s{i}"]) == [rows[i]]
        assert stored._cached_bytes == sum(t.nbytes for t in stored._cache.values()) <= 3.5 * one_group
        assert 1 <= len(stored._cache) <= 3


@pytest.mark.parametrize("chunk_rows", [1, 7, 10_000])
def test_chunks_hold_about_chunk_rows_stored_rows(tmp_path, chunk_rows):
    rows = [SegmentRow(recording_id=f"s{i}", source_path=f"{i:03d}.wav", source_sha256=f"s{i}",
                       recording_duration_s=9.0, segment_index=k, start_s=k * 1.0, end_s=k + 1.0, caption="c",
                       config_hash="caption=c2") for i in range(20) for k in range(3)]
    (path,) = write_files(tmp_path, [rows], row_group_size=16)
    chunks = list(merge_in_chunks(StoredRows([path]), {"caption": "c2"}, chunk_rows=chunk_rows))
    assert sum(chunks, []) == rows
    # A recording is never split; a chunk closes once it holds chunk_rows stored rows.
    assert [len(c) for c in chunks] == ([3] * 20 if chunk_rows <= 3 else [9] * 6 + [6] if chunk_rows == 7 else [60])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=files_strategy)
def test_latest_paths_are_where_the_last_file_holding_a_recording_put_it(tmp_path_factory, files):
    stored = StoredRows(write_files(tmp_path_factory.mktemp("latest"), files, row_group_size=3))
    for key in stored.keys():
        last = [rows for rows in files if any(key_of(r) == key for r in rows)][-1]
        assert stored.latest_paths(key) == {r.source_path for r in last if key_of(r) == key}
        assert stored.latest_paths(key) <= stored.stored_paths(key)
        assert stored.last_file(key) == max(i for i, rows in enumerate(files) if any(key_of(r) == key for r in rows))
    assert stored.latest_paths("never-stored") == set() and stored.last_file("never-stored") == -1
