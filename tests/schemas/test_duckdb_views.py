import pytest

from omni_caption.schemas import QueryRefused, SegmentRow, rows_to_table, run_query, write_table_atomic


@pytest.fixture
def dataset(tmp_path):
    rows = [SegmentRow("r1", "a.wav", "s1", 40.0, i, i * 20.0, i * 20.0 + 20, caption=f"c{i}",
                       flags=("truncated:caption",) if i else ()) for i in range(2)]
    rows.append(SegmentRow.error_row("b.mp3", "cannot decode"))
    return write_table_atomic(rows_to_table(rows), tmp_path / "d.parquet")


def test_segments_and_recordings_views(dataset):
    assert run_query(dataset, "SELECT count(*) FROM segments").fetchone() == (3,)
    recs = run_query(dataset, "SELECT source_path, segments, status, flagged_segments FROM recordings ORDER BY 1")
    assert recs.fetchall() == [("a.wav", 2, "ok", 1), ("b.mp3", 0, "error", 0)]


@pytest.mark.parametrize("sql", [
    "COPY segments TO 'x.csv'",
    "CREATE TABLE t AS SELECT 1",
    "SELECT 1; DROP VIEW segments",
    "ATTACH 'other.db'",
    "INSTALL httpfs",
])
def test_writes_are_refused(dataset, sql):
    with pytest.raises(QueryRefused):
        run_query(dataset, sql)


def test_a_pivot_is_read_only_though_duckdb_makes_it_an_enum_first(dataset):
    """A PIVOT without an IN list is two statements to DuckDB, its own CREATE TYPE first: it was refused as CREATE."""
    pivot = run_query(dataset, "PIVOT segments ON status USING count(*) GROUP BY source_path ORDER BY 1")
    assert pivot.columns == ["source_path", "error", "ok"]
    assert pivot.fetchall() == [("a.wav", 0, 2), ("b.mp3", 1, 0)]
    with pytest.raises(QueryRefused, match="got COPY"):
        run_query(dataset, "PIVOT segments ON status USING count(*); COPY segments TO 'x.csv'")


@pytest.mark.parametrize("name", ["runs [1]", "runs*", "it's?", "a\\b"])
def test_a_dataset_is_read_by_its_own_name_whatever_glob_characters_it_holds(tmp_path, name):
    """DuckDB globs every name its reader is given: `runs [1]/` found no files, and `runs*/` read the shards of
    every folder starting with `runs` as one dataset."""
    def sharded(folder, rows):
        (tmp_path / folder).mkdir()
        table = rows_to_table([SegmentRow("r", f"{folder}.wav", "s", 9.0, i, i, i + 1.0) for i in range(rows)])
        write_table_atomic(table, tmp_path / folder / "shard-00000.parquet")

    sharded(name, 2)
    sharded(name.replace("*", "-more").replace("[1]", "1").replace("?", "s").replace("\\", "x"), 5)
    assert run_query(tmp_path / name, "SELECT count(*), any_value(source_path) FROM segments").fetchone() == \
        (2, f"{name}.wav")
    single = write_table_atomic(rows_to_table([SegmentRow("r", "x.wav", "s", 1.0, 0, 0.0, 1.0)]),
                                tmp_path / f"{name}.parquet")
    assert run_query(single, "SELECT count(*) FROM segments").fetchone() == (1,)
