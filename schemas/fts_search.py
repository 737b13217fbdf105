"""Full-text search over captions, transcripts and summaries: BM25 through DuckDB's fts.

The fts extension comes from the `duckdb-extension-fts` wheel and is loaded
from its file, never downloaded, so search works offline. When it cannot be
loaded, a plain ILIKE search answers instead and says so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from . import search_index
from .duckdb_views import connect_readonly
from .search_index import TEXT_FIELDS, FtsUnavailable
from .search_terms import indexed_words, query_words

# The text as written: an indexed field may hold it spelled out (search_index.build_index).
_COLUMNS = "source_path, segment_index, start_s, end_s, " + ", ".join(f"coalesce({f}_text, {f})" for f in TEXT_FIELDS)

__all__ = ["FtsUnavailable", "SearchHit", "SearchResult", "bm25_search", "ilike_search", "search_dataset"]


@dataclass(frozen=True)
class SearchHit:
    source_path: str
    segment_index: int | None  # None: a recording-level hit (its summary), spanning the whole file
    start_s: float | None
    end_s: float | None
    score: float
    field: str  # the column that matched best: caption, transcript or summary
    text: str


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    method: str  # "bm25" or "ilike"
    notice: str | None = None  # why BM25 was not used


def search_dataset(path: str | os.PathLike, query: str, limit: int = 20,
                   cache_dir: Path | None = None, use_cache: bool = True) -> SearchResult:
    """The `limit` best matches of `query`, best first; error rows are never hits.

    The BM25 index is cached under `cache_dir` (default: $OMNI_CAPTION_HOME/search)
    unless `use_cache` is False, when it is built in memory and dropped.
    """
    terms = [t for t in query.split() if t]
    if not terms:
        raise ValueError("empty search")
    cache = (cache_dir or search_index.default_cache_dir()) if use_cache else None
    try:
        con = search_index.open_index(path, cache)
    except FtsUnavailable as exc:
        plain = connect_readonly(path)
        search_index.plain_docs_view(plain)
        return SearchResult(ilike_search(plain, terms, limit), "ilike",
                            notice=f"fts extension unavailable ({exc}); using a plain ILIKE search")
    try:
        return SearchResult(bm25_search(con, query, limit), "bm25")
    finally:
        con.close()


def bm25_search(con: duckdb.DuckDBPyConnection, query: str, limit: int) -> list[SearchHit]:
    """The best `limit` hits from the index `search_index.build_index` made in `con`."""
    # The query's words alone, each with a stem: fts blanks punctuation and splits on single spaces, so
    # 'dog!' held an empty term, and Porter stems the 's' of "it's" to one too; texts with a possessive
    # hold that empty term, so every one of them matched.
    terms = query_words(query)
    stem = _stemmer(con, terms)
    words = " ".join(w for w in terms if stem(w))
    if not words:
        return []
    rows = con.execute(
        f"SELECT {_COLUMNS}, score FROM (SELECT *, fts_main_docs.match_bm25(doc_id, ?) AS score FROM docs) "
        "WHERE score IS NOT NULL ORDER BY score DESC, source_path, segment_index NULLS FIRST LIMIT ?",
        [words, limit]).fetchall()
    indexed = {text: indexed_words(text) for row in rows for text in row[4:7] if text}
    stem = _stemmer(con, terms + [w for words in indexed.values() for w in words])
    query_stems = {stem(w) for w in terms}
    return [_hit(row, row[-1], lambda text: len(query_stems & {stem(w) for w in indexed[text]})) for row in rows]


def ilike_search(con: duckdb.DuckDBPyConnection, terms: list[str], limit: int) -> list[SearchHit]:
    """Over a `docs` table or view (no index needed): score = how many (term, field) pairs match, any case."""
    matches, params = [], []
    for term in terms:
        pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        for field in TEXT_FIELDS:
            matches.append(f"coalesce({field} ILIKE ? ESCAPE '\\', false)::INT")
            params.append(pattern)
    rows = con.execute(
        f"SELECT {_COLUMNS}, score FROM (SELECT *, {' + '.join(matches)} AS score FROM docs) "
        "WHERE score > 0 ORDER BY score DESC, source_path, segment_index NULLS FIRST LIMIT ?",
        params + [limit]).fetchall()
    lowered = [t.lower() for t in terms]
    return [_hit(row, float(row[-1]), lambda text: sum(t in text.lower() for t in lowered)) for row in rows]


def _hit(row: tuple, score: float, matches_in: Callable[[str], int]) -> SearchHit:
    texts = dict(zip(TEXT_FIELDS, row[4:7]))
    # The field with the most query words; ties go to the first in TEXT_FIELDS order.
    field = max((f for f in TEXT_FIELDS if texts[f]), key=lambda f: matches_in(texts[f]))
    return SearchHit(source_path=row[0], segment_index=row[1], start_s=row[2], end_s=row[3],
                     score=score, field=field, text=texts[field])


def _stemmer(con: duckdb.DuckDBPyConnection, words: list[str]) -> Callable[[str], str]:
    """fts's own Porter stemmer, asked once for every distinct word."""
    words = sorted(set(words))
    stems = dict(con.execute("SELECT w, stem(w, 'porter') FROM unnest(?::VARCHAR[]) AS t(w)", [words]).fetchall())
    return lambda word: stems.get(word, word)
