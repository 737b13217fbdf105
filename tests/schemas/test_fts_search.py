from dataclasses import replace

import duckdb
import pytest

from omni_caption.schemas import SegmentRow, search_index
from omni_caption.schemas.fts_search import search_dataset
from omni_caption.schemas.search_index import FtsUnavailable, load_fts
from tests.schemas.sample_dataset import sample_rows, write_sample


@pytest.fixture
def dataset(tmp_path):
    return write_sample(tmp_path / "d.parquet")


@pytest.fixture
def search(tmp_path):
    """search_dataset with the index cache in the test's own folder."""
    return lambda path, query, **kw: search_dataset(path, query, cache_dir=tmp_path / "cache", **kw)


@pytest.fixture
def no_fts(tmp_path, monkeypatch):
    """A machine where fts really cannot load: a corrupt wheel file and nothing installed under ~/.duckdb."""
    broken = tmp_path / "fts.duckdb_extension"
    broken.write_bytes(b"not an extension")
    monkeypatch.setattr(search_index, "_fts_candidates", lambda: [str(broken)])
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_fts_loads_from_the_wheel_without_download(tmp_path):
    con = duckdb.connect()
    # An empty extension directory: nothing installed there, and autoinstall is off.
    con.execute(f"SET extension_directory = '{tmp_path}'")
    load_fts(con)
    assert con.execute("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'fts'").fetchone() == (True,)
    assert con.execute("SELECT current_setting('autoinstall_known_extensions')").fetchone() == (False,)


def test_bm25_ranks_by_stem_and_names_the_matching_field(dataset, search):
    result = search(dataset, "dog barking")
    assert result.method == "bm25" and result.notice is None
    (hit,) = result.hits  # "barking" finds "barks"; no other segment mentions dogs or barking
    assert (hit.source_path, hit.segment_index, hit.start_s, hit.end_s) == ("a.wav", 0, 0.0, 15.0)
    assert hit.field == "caption" and hit.text == "A dog barks loudly near the river." and hit.score > 0


@pytest.mark.parametrize("query", ["dog!", "(dog)", '"dog', "dog's", "dog 100%"])
def test_punctuation_in_a_query_finds_what_its_words_find(tmp_path, search, query):
    """fts blanks a query's punctuation and splits on single spaces, so 'dog!' held an empty term; Porter
    stems the 's' of a possessive to an empty term too, so that term matched every text with a possessive."""
    rows = sample_rows()
    rows[1] = replace(rows[1], caption="A man's voice echoes in the hall.")
    dataset = write_sample(tmp_path / "d.parquet", rows)
    assert [(h.source_path, h.segment_index) for h in search(dataset, query).hits] == [("a.wav", 0)]
    assert search(dataset, query.replace("dog", "zebra")).hits == []


def test_transcripts_and_recording_level_summaries(dataset, search):
    (hit,) = search(dataset, "welcome").hits
    assert (hit.source_path, hit.segment_index, hit.field) == ("talks/b.mp3", 0, "transcript")
    (hit,) = search(dataset, "raining").hits  # caption "Rain" and transcript "raining" tie: caption
    assert (hit.segment_index, hit.field) == (2, "caption")
    (hit,) = search(dataset, "budget").hits  # a summary hit is the recording, once, not each segment
    assert (hit.source_path, hit.segment_index, hit.start_s, hit.end_s) == ("talks/b.mp3", None, 0.0, 10.0)
    assert (hit.field, hit.text) == ("summary", "A short planning meeting about the budget.")


def test_bm25_orders_best_first_limits_and_skips_stop_words(tmp_path, search):
    rows = [SegmentRow("r", "x.wav", "s", 40.0, i, float(i), i + 1.0, caption=text)
            for i, text in enumerate(["a cat", "a dog and a cat", "dog dog dog", "a bird"])]
    path = write_sample(tmp_path / "x.parquet", rows)
    hits = search(path, "dog", limit=5).hits
    assert [h.segment_index for h in hits] == [2, 1]
    assert hits[0].score > hits[1].score
    assert len(search(path, "dog cat", limit=1).hits) == 1
    assert [h.segment_index for h in search(path, "the a dog").hits] == [2, 1]


def test_accented_and_non_latin_words_are_searchable(tmp_path, search):
    rows = [SegmentRow("r", "x.wav", "s", 9.0, 0, 0.0, 3.0, transcript="Привет, мир"),
            SegmentRow("r", "x.wav", "s", 9.0, 1, 3.0, 6.0, transcript="Déjà vu in the café")]
    path = write_sample(tmp_path / "x.parquet", rows)
    assert [h.segment_index for h in search(path, "мир").hits] == [0]
    assert [h.segment_index for h in search(path, "cafe").hits] == [1]


def test_words_inside_chinese_japanese_and_korean_text_are_found(tmp_path, search):
    rows = [SegmentRow("r", "x.wav", "s", 9.0, 0, 0.0, 3.0, caption="我们讨论了下个季度的预算和招聘计划。"),
            SegmentRow("r", "x.wav", "s", 9.0, 1, 3.0, 6.0, transcript="東京で予算について話しました。"),
            SegmentRow("r", "x.wav", "s", 9.0, 2, 6.0, 9.0, transcript="예산 회의를 했습니다. ｶﾞｽ代"),
            SegmentRow("r", "x.wav", "s", 9.0, 3, 9.0, 12.0, caption="A budget meeting in Tokyo.")]
    path = write_sample(tmp_path / "x.parquet", rows)
    found = {q: [h.segment_index for h in search(path, q).hits]
             for q in ["预算", "季度", "预", "東京", "予算", "회의", "회의를", "ガス", "budget 预算"]}
    assert sorted(found.pop("budget 预算")) == [0, 3]
    assert found == {"预算": [0], "季度": [0], "预": [0], "東京": [1], "予算": [1], "회의": [2], "회의를": [2],
                     "ガス": [2]}
    # A pair that is not in the text, though both its characters are, finds nothing.
    assert search(path, "预划").hits == []
    hit = search(path, "予算").hits[0]
    assert (hit.field, hit.text) == ("transcript", "東京で予算について話しました。")  # as written, not as indexed


def test_error_rows_are_never_hits(dataset, search):
    assert search(dataset, "FFmpeg").hits == []


def test_index_is_cached_and_rebuilt_when_the_dataset_changes(dataset, tmp_path, search, monkeypatch):
    search(dataset, "dog")
    (first,) = (tmp_path / "cache").iterdir()
    builds = []
    real_build = search_index.build_index
    monkeypatch.setattr(search_index, "build_index", lambda con: builds.append(1) or real_build(con))
    assert search(dataset, "river").hits[0].segment_index == 0
    assert builds == []  # served from the cached file
    rows = [r for r in sample_rows() if r.segment_index != 0 or r.source_path != "a.wav"]
    write_sample(dataset, rows)  # the dataset changes: the old index must not answer
    assert search(dataset, "dog").hits == [] and builds == [1]
    (second,) = (tmp_path / "cache").iterdir()  # and the stale index is gone
    assert second != first


def test_no_cache_writes_nothing(dataset, tmp_path):
    result = search_dataset(dataset, "dog", cache_dir=tmp_path / "cache", use_cache=False)
    assert len(result.hits) == 1 and not (tmp_path / "cache").exists()


def test_unwritable_cache_still_searches(dataset, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would go")
    result = search_dataset(dataset, "dog", cache_dir=blocker / "cache")
    assert result.method == "bm25" and len(result.hits) == 1


def test_default_cache_follows_omni_caption_home_then_xdg_like_the_models(tmp_path, monkeypatch):
    from omni_caption.model.presets import default_cache_dir as models_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("OMNI_CAPTION_HOME", str(tmp_path / "home"))
    assert search_index.default_cache_dir() == tmp_path / "home" / "search" == models_cache() / "search"
    monkeypatch.delenv("OMNI_CAPTION_HOME")
    assert search_index.default_cache_dir() == tmp_path / "xdg" / "omni-caption" / "search" == models_cache() / "search"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert search_index.default_cache_dir() == tmp_path / "user" / ".cache" / "omni-caption" / "search"


def test_load_fails_cleanly_without_the_extension(no_fts):
    with pytest.raises(FtsUnavailable):
        load_fts(duckdb.connect())


def test_falls_back_to_ilike_when_fts_cannot_load(dataset, no_fts, search):
    result = search(dataset, "meeting ROOM")
    assert result.method == "ilike" and "ILIKE" in result.notice
    assert [(h.source_path, h.segment_index, h.field, h.score) for h in result.hits] == [
        ("talks/b.mp3", 0, "caption", 3.0),  # meeting in caption and transcript, room in caption
        ("talks/b.mp3", None, "summary", 1.0),
    ]
    assert search(dataset, "50%_off").hits == []  # wildcards are literal


def test_empty_search_is_refused(dataset, search):
    with pytest.raises(ValueError):
        search(dataset, "   ")


def test_sample_has_no_dog_outside_segment_0():
    # Guards the ranking tests above against a fixture edit.
    assert sum("dog" in (r.caption or "") + (r.transcript or "") for r in sample_rows()) == 1
