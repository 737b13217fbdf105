"""Which recordings of earlier runs a run keeps, and which a changed file replaces."""

from __future__ import annotations

import pyarrow.parquet as pq

from omni_caption.pipelines.run import EarlierRecordings
from omni_caption.schemas import SegmentRow, StoredRows, rows_to_table


def stored_files(tmp_path, files: list[list[tuple[str, str]]]) -> StoredRows:
    """Files in write order, each with one row per (sha256, source_path)."""
    paths = []
    for i, recordings in enumerate(files):
        rows = [SegmentRow(recording_id=sha, source_path=path, source_sha256=sha, recording_duration_s=1.0,
                           segment_index=0, start_s=0.0, end_s=1.0, caption="c", config_hash="caption=h")
                for sha, path in recordings]
        paths.append(tmp_path / f"f{i}.parquet")
        pq.write_table(rows_to_table(rows), paths[-1])
    return StoredRows(paths)


def test_absent_recordings_are_kept_and_the_newest_of_one_path_wins(tmp_path):
    # A run captioned x.wav (A) and y.wav (C); x.wav was replaced (B) by a run that never finished.
    stored = stored_files(tmp_path, [[("A", "x.wav"), ("C", "y.wav")], [("B", "x.wav")]])
    earlier = EarlierRecordings.of(stored, {"D": ["z.wav"]}, prune=False)
    assert earlier.kept == {"B", "C"} and earlier.replaced == {} and earlier.kept_paths() == {"x.wav", "y.wav"}
    assert EarlierRecordings.of(stored, {"D": ["z.wav"]}, prune=True).kept == frozenset()


def test_a_path_this_run_holds_with_other_content_replaces_every_earlier_recording_there(tmp_path):
    stored = stored_files(tmp_path, [[("A", "x.wav"), ("C", "y.wav")], [("B", "x.wav")]])
    earlier = EarlierRecordings.of(stored, {"E": ["x.wav"]}, prune=False)
    assert earlier.kept == {"C"} and earlier.replaced == {"A": "x.wav", "B": "x.wav"}
    (line,) = earlier.replaced_lines()
    assert line.startswith("x.wav: its content changed since an earlier run")


def test_a_recording_this_run_has_is_neither_kept_nor_replaced(tmp_path):
    stored = stored_files(tmp_path, [[("A", "old/x.wav")]])
    earlier = EarlierRecordings.of(stored, {"A": ["new/x.wav"]}, prune=False)  # moved: same bytes
    assert earlier.kept == frozenset() and earlier.replaced == {}
