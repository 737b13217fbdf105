import duckdb
import pyarrow.parquet as pq
import pytest

from omni_caption.schemas import (SCHEMA_VERSION, SEGMENT_SCHEMA, DatasetInfo, ModelIds, PartStore, Scores,
                                  SegmentRow, merge_stage_rows, read_dataset, rows_to_table, schema_version_of,
                                  table_to_rows, write_table_atomic)


def ok_row(index=0, **extra):
    base = dict(recording_id="abcd", source_path="a.wav", source_sha256="ab" * 32, recording_duration_s=40.0,
                segment_index=index, start_s=index * 20.0, end_s=index * 20.0 + 20.0)
    return SegmentRow(**{**base, **extra})


def test_schema_v1_columns():
    expected = ["recording_id", "source_path", "source_sha256", "recording_duration_s", "segment_index",
                "start_s", "end_s", "speaker", "speech_ratio", "caption", "transcript", "language", "reasoning",
                "answer", "summary", "summary_reasoning", "summary_audio_path", "flags", "scores", "models",
                "prompt_version", "config_hash", "audio", "status", "error"]
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


def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = write_table_atomic(rows_to_table([ok_row(0, caption="old")]), tmp_path / "x.parquet")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError):
        write_table_atomic(rows_to_table([ok_row(0, caption="new")]), path)
    assert table_to_rows(pq.read_table(path))[0].caption == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]  # no temp file left behind


def test_stage_rows_merge_into_one_row_per_segment():
    captions = [ok_row(0, caption="c0", flags=("truncated:caption",), scores=Scores(caption_tokens=3),
                       models=ModelIds(caption="cap")), ok_row(1, caption="c1")]
    transcripts = [ok_row(0, transcript="t0", scores=Scores(transcript_tokens=5), models=ModelIds(transcript="ins"),
                          flags=("empty:transcript",)), ok_row(1, transcript="t1")]
    merged = merge_stage_rows(captions + transcripts)
    assert [(r.caption, r.transcript) for r in merged] == [("c0", "t0"), ("c1", "t1")]
    assert merged[0].flags == ("empty:transcript", "truncated:caption")
    assert merged[0].scores == Scores(caption_tokens=3, transcript_tokens=5)
    assert merged[0].models == ModelIds(caption="cap", transcript="ins")


def test_a_failed_recording_is_one_error_row():
    rows = [SegmentRow.error_row("a.wav", "bad"), SegmentRow.error_row("a.wav", "bad"), ok_row(0)]
    merged = merge_stage_rows(rows)
    assert [(r.source_path, r.status) for r in merged] == [("a.wav", "error")]


def test_part_store_compacts_atomically(tmp_path):
    store = PartStore(tmp_path / "out.parquet")
    store.write_part(rows_to_table([ok_row(1, caption="b")]))
    store.write_part(rows_to_table([ok_row(0, caption="a")]))
    assert len(store.part_paths()) == 2
    final = store.compact(DatasetInfo("0.1.0", {}))
    assert [r.caption for r in table_to_rows(pq.read_table(final))] == ["a", "b"]
    assert not store.parts_dir.exists()
