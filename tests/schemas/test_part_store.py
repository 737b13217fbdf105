"""Finalizing a chunk at a time: shards, the audio feature, and no lost rows if it dies at any step."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
import pytest

from omni_caption.schemas import DatasetInfo, PartStore, SegmentRow, merge_in_chunks, merge_rows, rows_to_table
from omni_caption.schemas import part_store as part_store_module
from omni_caption.schemas.parquet_store import HF_METADATA_KEY

INFO = DatasetInfo("0.1.0", {})
WANTED = {"caption": "c1"}


def rec(i: int, caption: str = "c", segments: int = 2, audio: bool = False) -> list[SegmentRow]:
    return [SegmentRow(recording_id=f"r{i}", source_path=f"{i:03d}.wav", source_sha256=f"s{i:03d}",
                       recording_duration_s=2.0, segment_index=k, start_s=float(k), end_s=k + 1.0,
                       caption=f"{caption}{i}.{k}", config_hash="caption=c1",
                       audio={"bytes": b"fLaC", "path": f"{i}_{k}.flac"} if audio else None)
            for k in range(segments)]


def merged(store: PartStore) -> list[SegmentRow]:
    return merge_rows(store.existing_rows(), WANTED)


def test_chunks_fill_shards_of_exactly_rows_per_shard(tmp_path):
    store = PartStore(str(tmp_path / "ds") + "/", rows_per_shard=3)
    chunks = [rec(0), rec(1, segments=5), [], rec(2, segments=1)]  # 8 rows, chunk edges off the shard edges
    written = store.finalize_chunks(chunks, INFO)
    assert [pq.read_metadata(p).num_rows for p in written] == [3, 3, 2]
    assert store.existing_rows() == [r for c in chunks for r in c]


def test_empty_output_is_one_empty_shard(tmp_path):
    store = PartStore(str(tmp_path / "ds") + "/")
    (shard,) = store.finalize_chunks([], INFO)
    assert shard.name == "shard-00000.parquet" and pq.read_metadata(shard).num_rows == 0


@pytest.mark.parametrize("out", ["out.parquet", "ds/"])
def test_the_store_can_be_rewritten_from_its_own_rows(tmp_path, out):
    store = PartStore(str(tmp_path / out), rows_per_shard=3)
    store.finalize_chunks([rec(i, "old") for i in range(4)], INFO)
    store.write_part(rows_to_table(rec(1, "new")))
    store.write_part(rows_to_table(rec(9, "new")))
    expected = merged(store)
    # The chunks are read lazily from the very files being replaced.
    store.finalize_chunks(merge_in_chunks(store.stored(), WANTED, chunk_rows=2), INFO)
    assert store.existing_rows() == expected
    assert [r.caption for r in expected if r.source_path == "001.wav"] == ["new1.0", "new1.1"]
    assert not store.parts_dir.exists() and not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("out", ["out.parquet", "ds/"])
def test_a_failing_chunk_leaves_output_and_parts_as_they_were(tmp_path, out):
    store = PartStore(str(tmp_path / out), rows_per_shard=2)
    store.finalize_chunks([rec(0, "old"), rec(1, "old")], INFO)
    store.write_part(rows_to_table(rec(2, "new")))
    before = store.existing_rows()

    def chunks():
        yield rec(0, "x")
        yield rec(1, "x")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        store.finalize_chunks(chunks(), INFO)
    assert store.existing_rows() == before
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("crash_at", range(8))
def test_a_sharded_finalize_killed_at_any_rename_loses_nothing(tmp_path, monkeypatch, crash_at):
    store = PartStore(str(tmp_path / "ds") + "/", rows_per_shard=2)
    store.finalize_chunks([rec(i, "old") for i in range(3)], INFO)  # 3 old shards
    store.write_part(rows_to_table(rec(1, "new")))
    store.write_part(rows_to_table(rec(7, "new")))
    expected = merged(store)
    real_replace, calls = os.replace, []

    def dying_replace(src, dst):
        if len(calls) == crash_at:
            raise KeyboardInterrupt("killed")
        calls.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(part_store_module.os, "replace", dying_replace)
    try:
        store.finalize_chunks(merge_in_chunks(store.stored(), WANTED), INFO)
        finished = True
    except KeyboardInterrupt:
        finished = False
    monkeypatch.setattr(part_store_module.os, "replace", real_replace)
    assert finished == (crash_at >= 7)  # 3 old shards set aside + 4 new ones renamed
    assert merged(store) == expected  # whatever survived merges to the same dataset
    store.finalize_chunks(merge_in_chunks(store.stored(), WANTED), INFO)  # the rerun's finalize
    assert store.existing_rows() == expected and not store.parts_dir.exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_audio_feature_is_declared_only_with_audio(tmp_path):
    plain = PartStore(tmp_path / "plain.parquet")
    plain.finalize(rec(0), INFO)
    assert not plain.has_audio()
    assert HF_METADATA_KEY not in pq.read_schema(plain.out_path).metadata
    embedded = PartStore(tmp_path / "audio.parquet")
    embedded.finalize(rec(0) + rec(1, audio=True), INFO)
    assert embedded.has_audio()
    assert HF_METADATA_KEY in pq.read_schema(embedded.out_path).metadata
    # Streamed: the caller says so up front, since the first chunk may have none.
    streamed = PartStore(tmp_path / "streamed.parquet")
    streamed.finalize_chunks([rec(0), rec(1, audio=True)], INFO, audio=True)
    assert HF_METADATA_KEY in pq.read_schema(streamed.out_path).metadata


def committed_parts(out, groups: list[list[int]]) -> PartStore:
    """Parts as a run commits them: one per group, each with the manifest of its recordings."""
    store = PartStore(out)
    for group in groups:
        store.write_part(rows_to_table([r for i in group for r in rec(i)]),
                         {"recordings": [{"source_path": f"{i:03d}.wav", "key": f"s{i:03d}"} for i in group]})
    return store


def test_work_in_progress_counts_committed_parts_and_their_recordings(tmp_path):
    from omni_caption.schemas.part_store import work_in_progress

    out = tmp_path / "o.parquet"
    assert work_in_progress(out) is None
    committed_parts(out, [[1, 2], [3], [1]])  # a second stage's part for recording 1
    progress = work_in_progress(out)
    assert (progress.parts, progress.recordings, progress.parts_dir) == (3, 3, tmp_path / "o.parquet.parts")
    assert progress.describe().startswith("3 committed parts (3 recordings) in ")


def test_dataset_commands_say_a_run_is_in_progress(tmp_path):
    from click.testing import CliRunner

    from omni_caption.cli.main import cli

    out = tmp_path / "o.parquet"
    committed_parts(out, [[1, 2]])
    for args in (["info", str(out)], ["query", str(out), "SELECT 1"], ["export", str(out), "--format", "jsonl",
                                                                     "--out", str(tmp_path / "x.jsonl")]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and (f"no dataset at {out} yet: 1 committed part (2 recordings) in "
                                          f"{out}.parts/ is not merged yet") in " ".join(result.output.split())
    # What the message offers: the committed rows, unmerged, queried where they are.
    peek = CliRunner().invoke(cli, ["query", f"{out}.parts/", "SELECT count(*) AS n FROM segments", "--format", "csv"])
    assert peek.exit_code == 0 and peek.output.split() == ["n", "4"]
    PartStore(out).finalize_chunks([rec(1), rec(2)], INFO)  # the run ended; then a new run commits a part
    committed_parts(out, [[3]])
    info = CliRunner().invoke(cli, ["info", str(out)])
    assert info.exit_code == 0 and "in progress      1 committed part (1 recording) in" in info.output


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


@pytest.mark.parametrize("out", ["out.parquet", "ds/"])
def test_outputs_and_parts_get_the_mode_the_umask_gives_not_0600(tmp_path, out, umask):
    """A corpus is written for a team: mkstemp's 0600 would hide it from everyone but its writer."""
    store = PartStore(str(tmp_path / out), rows_per_shard=3)
    part = store.write_part(rows_to_table(rec(0)))
    assert part.stat().st_mode & 0o777 == 0o666 & ~umask
    written = store.finalize_chunks([rec(1), rec(2)], INFO)
    assert written and {p.stat().st_mode & 0o777 for p in written} == {0o666 & ~umask}


@pytest.mark.parametrize("out", ["out.parquet", "ds/"])
def test_a_linked_output_is_written_where_the_link_points_and_the_link_stays(tmp_path, out):
    """A rename over the link would replace it; set-aside shards would cross to the link's file system."""
    (tmp_path / "big_disk").mkdir()
    target = tmp_path / "big_disk" / out.rstrip("/")
    if out.endswith("/"):
        target.mkdir()
    link = tmp_path / "here" / out.rstrip("/")
    link.parent.mkdir()
    link.symlink_to(target)
    store = PartStore(str(link) + "/" * out.endswith("/"), rows_per_shard=3)
    store.finalize_chunks([rec(0), rec(1)], INFO)
    store.write_part(rows_to_table(rec(1, "new")))
    store.finalize_chunks(merge_in_chunks(store.stored(), WANTED, chunk_rows=2), INFO)
    assert link.is_symlink() and link.resolve() == target
    assert PartStore(target).existing_rows() == merged(PartStore(link)) and len(merged(PartStore(link))) == 4
    assert not list((tmp_path / "here").glob("*.parts")) and not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("name", ["out.parquet", "take [1].parquet", "runs*.parquet"])
def test_a_temp_file_left_by_a_finalize_that_died_is_cleared_whatever_the_outputs_name(tmp_path, name):
    store = PartStore(str(tmp_path / name))
    left = tmp_path / f".{name}.a1b2c3.tmp"
    left.write_bytes(b"half a file")
    other = tmp_path / ".runs-2.parquet.d4e5.tmp"  # another output's: not this run's to clear
    other.write_bytes(b"someone else's")
    store.finalize_chunks([rec(0, "x")], INFO)
    assert not left.exists() and other.exists()


def test_a_damaged_part_is_left_out_of_the_stored_rows_and_set_aside_with_a_line(tmp_path):
    """A part cut short (a copy, a disk's fault) stopped every later run with 'Parquet magic bytes not found'."""
    store = PartStore(str(tmp_path / "o.parquet"))
    store.write_part(rows_to_table(rec(0, "kept")))
    damaged = store.write_part(rows_to_table(rec(1, "lost")))
    damaged.write_bytes(damaged.read_bytes()[:100])
    store.write_part(rows_to_table(rec(2, "kept")))
    why = f"{damaged} is not a whole Parquet file (cut short: it has no footer)"
    assert store.damaged_parts() == {damaged: why}
    assert sorted(store.stored().keys()) == ["s000", "s002"]
    assert store.set_aside_damaged_parts() == [
        f"{why}: set aside in {tmp_path / 'o.parquet.damaged'}/, and the work it held is done again"]
    assert (tmp_path / "o.parquet.damaged" / damaged.name).exists() and not damaged.exists()
    assert store.damaged_parts() == {} and len(store.part_paths()) == 2
