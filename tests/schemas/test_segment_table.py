import duckdb
import pyarrow.parquet as pq
import pytest

from omni_caption.schemas import (SCHEMA_VERSION, SEGMENT_SCHEMA, DatasetInfo, ModelIds, PartStore, Scores, StoredRows,
                                  SegmentRow, read_dataset, rows_to_table, schema_version_of,
                                  table_to_rows, write_table_atomic)


def ok_row(index=0, **extra):
    base = dict(recording_id="abcd", source_path="a.wav", source_sha256="ab" * 32, recording_duration_s=40.0,
                segment_index=index, start_s=index * 20.0, end_s=index * 20.0 + 20.0)
    return SegmentRow(**{**base, **extra})


def test_schema_v3_columns():
    expected = ["recording_id", "source_path", "source_sha256", "recording_duration_s", "segment_index",
                "start_s", "end_s", "speaker", "speech_ratio", "caption", "transcript", "transcript_raw",
                "language", "reasoning",
                "answer", "summary", "summary_reasoning", "summary_audio_path", "summary_audio_duration_s",
                "summary_audio_source", "flags", "scores", "models", "prompt_version", "config_hash", "audio", "status", "error"]
    assert SEGMENT_SCHEMA.names == expected


def test_round_trip_through_parquet(tmp_path):
    rows = [
        ok_row(0, caption="A dog barks.", flags=("truncated:caption",),
               scores=Scores(caption_avg_logprob=-0.5, caption_tokens=12), models=ModelIds(caption="m@1"),
               prompt_version="p", config_hash="c"),
        ok_row(1, transcript="hello", language="English"),
        SegmentRow.error_row("b.mp3", "FFmpeg cannot\nread it", sha256="cd" * 32),
    ]
    path = write_table_atomic(rows_to_table(rows), tmp_path / "x.parquet",
                              DatasetInfo(tool_version="0.1.0", run_config={"tasks": ["caption"]}))
    table, info = read_dataset(path)
    assert table_to_rows(table) == rows
    assert info.run_config == {"tasks": ["caption"]} and info.tool_version == "0.1.0"
    assert schema_version_of(path) == SCHEMA_VERSION
    assert rows[2].error == "FFmpeg cannot read it"  # one line
    assert rows[2].recording_id == "cd" * 8


def test_readers_need_no_glue(tmp_path):
    path = write_table_atomic(rows_to_table([ok_row(0, caption="x"), ok_row(1)]), tmp_path / "x.parquet")
    assert duckdb.sql(f"SELECT count(*) FROM '{path}' WHERE caption = 'x'").fetchone() == (1,)
    frame = pq.read_table(path).to_pandas()
    assert list(frame["segment_index"]) == [0, 1]
    assert frame["scores"][0]["caption_tokens"] is None


def test_pandas_reads_segment_index_as_integers_beside_an_error_row(tmp_path):
    """An error row has no segment_index; pandas would make the whole column float64 (0.0, 1.0, NaN)."""
    import pandas as pd

    rows = [ok_row(0), ok_row(1), SegmentRow.error_row("b.mp3", "unreadable", sha256="cd" * 32)]
    path = write_table_atomic(rows_to_table(rows), tmp_path / "x.parquet")
    frame = pd.read_parquet(path)
    assert str(frame["segment_index"].dtype) == "Int32"
    assert frame["segment_index"].tolist()[:2] == [0, 1] and frame["segment_index"].isna().tolist() == [False, False,
                                                                                                         True]
    assert str(frame["start_s"].dtype) == "float64"  # columns not named keep pandas' own conversion
    assert duckdb.sql(f"SELECT count(segment_index) FROM '{path}'").fetchone() == (2,)


def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = write_table_atomic(rows_to_table([ok_row(0, caption="old")]), tmp_path / "x.parquet")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", boom)
    with pytest.raises(OSError):
        write_table_atomic(rows_to_table([ok_row(0, caption="new")]), path)
    assert table_to_rows(pq.read_table(path))[0].caption == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]  # no temp file left behind


def test_part_store_finalizes_atomically(tmp_path):
    store = PartStore(tmp_path / "out.parquet")
    store.write_part(rows_to_table([ok_row(1, caption="b")]), {"tasks": {"caption": "h"}})
    store.write_part(rows_to_table([ok_row(0, caption="a")]))
    assert [p.name for p in store.part_paths()] == ["part-000000.parquet", "part-000001.parquet"]
    assert [r.caption for r in store.existing_rows()] == ["b", "a"]
    info = DatasetInfo.from_metadata(pq.read_schema(store.part_paths()[0]).metadata)
    assert info.run_config == {"tasks": {"caption": "h"}}  # the part's manifest travels with its data
    (final,) = store.finalize([ok_row(0, caption="a"), ok_row(1, caption="b")], DatasetInfo("0.1.0", {}))
    assert [r.caption for r in table_to_rows(pq.read_table(final))] == ["a", "b"]
    assert not store.parts_dir.exists()
    assert [r.caption for r in store.existing_rows()] == ["a", "b"]  # the final file is resumable too


def test_sharded_output(tmp_path):
    store = PartStore(str(tmp_path / "ds") + "/", rows_per_shard=2)
    rows = [ok_row(i) for i in range(5)]
    written = store.finalize(rows, DatasetInfo("0.1.0", {}))
    assert [p.name for p in written] == ["shard-00000.parquet", "shard-00001.parquet", "shard-00002.parquet"]
    table, _ = read_dataset(tmp_path / "ds")
    assert table.num_rows == 5
    store.finalize(rows[:1], DatasetInfo("0.1.0", {}))  # fewer rows: stale shards go
    assert [p.name for p in store.final_paths()] == ["shard-00000.parquet"]


def test_v1_files_are_upgraded_when_read(tmp_path):
    import pyarrow as pa

    from omni_caption.schemas.parquet_store import read_rows

    # A v1 file as v1 wrote it: no transcript_raw, and the first eight score fields only.
    current = rows_to_table([ok_row(0, caption="old", scores=Scores(caption_avg_logprob=-0.5))])
    v1_fields = ["caption_avg_logprob", "caption_tokens", "transcript_avg_logprob", "transcript_tokens",
                 "reasoning_avg_logprob", "reasoning_tokens", "compression_ratio", "chars_per_s"]
    scores = current.column("scores").combine_chunks()
    v1_scores = pa.StructArray.from_arrays([scores.field(n) for n in v1_fields], names=v1_fields)
    v1 = current.drop_columns(["transcript_raw", "scores"]).append_column("scores", v1_scores)
    v1 = v1.replace_schema_metadata({b"omni_caption.schema_version": b"1"})
    pq.write_table(v1, tmp_path / "v1.parquet")
    (row,) = read_rows(tmp_path / "v1.parquet")
    assert row.caption == "old" and row.transcript_raw is None
    assert row.scores.caption_avg_logprob == -0.5 and row.scores.caption_temperature is None
    stored = StoredRows([tmp_path / "v1.parquet"])  # the chunked merge's reader upgrades the same way
    assert stored.rows_of(stored.keys()) == [row]
    table, _ = read_dataset(tmp_path / "v1.parquet")
    assert table.schema == SEGMENT_SCHEMA


def test_v2_files_are_upgraded_when_read(tmp_path):
    import pyarrow as pa

    from omni_caption.schemas.parquet_store import read_rows

    # A v2 file as v2 wrote it: no voiced-audio duration or source, and no `voice` model.
    current = rows_to_table([ok_row(0, caption="old", models=ModelIds(caption="m@1"), summary_audio_path="a.wav")])
    models = current.column("models").combine_chunks()
    v2_models = pa.StructArray.from_arrays([models.field(n) for n in ("caption", "transcript", "reasoning", "summary")],
                                           names=["caption", "transcript", "reasoning", "summary"])
    v2 = current.drop_columns(["summary_audio_duration_s", "summary_audio_source", "models"])
    v2 = v2.append_column("models", v2_models).replace_schema_metadata({b"omni_caption.schema_version": b"2"})
    pq.write_table(v2, tmp_path / "v2.parquet")
    (row,) = read_rows(tmp_path / "v2.parquet")
    assert row.summary_audio_path == "a.wav" and row.summary_audio_duration_s is None
    assert row.models == ModelIds(caption="m@1")
    stored = StoredRows([tmp_path / "v2.parquet"])
    assert stored.rows_of(stored.keys()) == [row]
    table, _ = read_dataset(tmp_path / "v2.parquet")
    assert table.schema == SEGMENT_SCHEMA


def test_newer_schema_is_refused_with_a_clear_message(tmp_path):
    import pyarrow as pa

    from omni_caption.schemas.parquet_store import read_rows

    future = pa.table({"source_path": ["a.wav"], "status": ["ok"]}).replace_schema_metadata(
        {b"omni_caption.schema_version": b"99"})
    pq.write_table(future, tmp_path / "f.parquet")
    with pytest.raises(ValueError, match="upgrade omni-caption"):
        read_rows(tmp_path / "f.parquet")
