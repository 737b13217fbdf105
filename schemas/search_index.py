"""The BM25 index behind `search`: built once per version of a dataset, kept in a cache folder.

fts builds its index at well under a million words per second per core, so a
dataset of a million captions takes minutes to index: far too long to redo on
every search. The index goes in a DuckDB file under
`$OMNI_CAPTION_HOME/search/` (never beside the dataset, which may be read-only
or shared), named after the dataset's path and its files' sizes and mtimes, so
any change to the dataset means a fresh index.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import duckdb

from omni_caption.cache_home import cache_home

from .duckdb_views import connect_readonly, dataset_files
from .search_terms import index_text, needs_spelling_sql


class FtsUnavailable(RuntimeError):
    """DuckDB's fts extension could not be loaded."""

TEXT_FIELDS = ("caption", "transcript", "summary")
# Bump when the docs table or the index settings change: old cache files are then ignored.
INDEX_FORMAT = "2"
# Letters and digits of any script are words (the fts default keeps only a-z,
# which would make accented and non-Latin transcripts unsearchable).
FTS_IGNORE = r"(\.|[^\p{L}\p{N}])+"
# Lucene's short English stop list: fts's own 'english' list (571 words) drops
# words people do search transcripts for, such as "welcome", "thanks", "know".
STOPWORDS = ("a an and are as at be but by for if in into is it no not of on or such that the their then "
             "there these they this to was will with").split()

# Segments carry captions and transcripts; a summary is indexed once per
# recording (not on each of its segments, where it is repeated), so a summary
# hit is the whole recording: segment_index NULL, 0 .. its duration.
DOCS_SELECT = """
SELECT source_path, segment_index, start_s, end_s, caption, transcript, NULL::VARCHAR AS summary
FROM memory.segments
WHERE status = 'ok' AND coalesce(caption, transcript) IS NOT NULL
UNION ALL
SELECT source_path, NULL::INTEGER, 0.0::DOUBLE, recording_duration_s, NULL::VARCHAR, NULL::VARCHAR, summary
FROM memory.recordings
WHERE status = 'ok' AND summary IS NOT NULL
"""


def _fts_candidates() -> list[str]:
    """Extension files to try, best first: the wheel's file for this DuckDB, then any it ships."""
    try:
        import duckdb_extension_fts
    except ImportError:
        return []
    root = Path(duckdb_extension_fts.__file__).parent / "extensions"
    exact = root / f"v{duckdb.__version__}" / "fts.duckdb_extension"
    others = sorted(p for p in root.glob("*/fts.duckdb_extension") if p != exact)
    return [str(p) for p in ([exact] if exact.exists() else []) + others]


def load_fts(con: duckdb.DuckDBPyConnection) -> None:
    """Load fts into `con` from the installed wheel (or an already installed copy), with no download."""
    # Without this, DuckDB would fetch the extension from its repository on first use.
    con.execute("SET autoinstall_known_extensions = false")
    reasons = []
    for candidate in _fts_candidates() + ["fts"]:
        try:
            con.load_extension(candidate)
            return
        except duckdb.Error as exc:
            reasons.append(" ".join(str(exc).split())[:200])
    raise FtsUnavailable(reasons[0] if reasons else "duckdb-extension-fts is not installed")


def default_cache_dir() -> Path:
    return cache_home() / "search"


def index_name(dataset: str | os.PathLike) -> tuple[str, str]:
    """(prefix shared by every index of this dataset path, file name of the index of its current state)."""
    files = dataset_files(dataset)
    prefix = hashlib.sha256(str(Path(dataset).resolve()).encode()).hexdigest()[:16]
    state = "|".join(f"{f.resolve()}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
    digest = hashlib.sha256(f"{INDEX_FORMAT}|{duckdb.__version__}|{state}".encode()).hexdigest()[:16]
    return prefix, f"{prefix}-{digest}.duckdb"


def build_index(con: duckdb.DuckDBPyConnection) -> None:
    """Table `docs` and its fts index in `con`'s current database, from the views `segments` and `recordings`."""
    # fts indexes each field as search_terms spells it out. Where that differs from the text (CJK, full-width
    # forms) the text itself is kept in `<field>_text` for the hits; elsewhere that is NULL, so English costs nothing.
    con.create_function("omni_index_text", index_text, ["VARCHAR"], "VARCHAR", side_effects=False)
    # The gate is tested once per field; the UDF is not called on a NULL `<field>_text`.
    kept = ", ".join(f"CASE WHEN {needs_spelling_sql(f)} THEN {f} END AS {f}_text" for f in TEXT_FIELDS)
    indexed = ", ".join(f"coalesce(omni_index_text({f}_text), {f}) AS {f}, {f}_text" for f in TEXT_FIELDS)
    con.execute(f"CREATE TABLE docs AS SELECT doc_id, source_path, segment_index, start_s, end_s, {indexed} "
                f"FROM (SELECT row_number() OVER () AS doc_id, *, {kept} FROM ({DOCS_SELECT}))")
    con.remove_function("omni_index_text")
    con.execute("CREATE TABLE stopwords (sw VARCHAR)")
    con.executemany("INSERT INTO stopwords VALUES (?)", [[w] for w in STOPWORDS])
    fields = ", ".join(f"'{f}'" for f in TEXT_FIELDS)
    con.execute(f"PRAGMA create_fts_index('docs', 'doc_id', {fields}, stemmer = 'porter', "
                f"stopwords = 'stopwords', ignore = '{FTS_IGNORE}', strip_accents = 1, lower = 1)")


def plain_docs_view(con: duckdb.DuckDBPyConnection) -> None:
    """View `docs` with the columns of the indexed table, for a search without fts (nothing is spelled out)."""
    texts = ", ".join(f"NULL::VARCHAR AS {f}_text" for f in TEXT_FIELDS)
    con.execute(f"CREATE VIEW docs AS SELECT *, {texts} FROM ({DOCS_SELECT})")


def open_index(dataset: str | os.PathLike, cache_dir: Path | None) -> duckdb.DuckDBPyConnection:
    """A connection whose `docs` table is indexed: from the cache, or built now (and cached unless cache_dir is None).

    Raises FtsUnavailable when fts cannot be loaded.
    """
    if cache_dir is None:
        return _build_in_memory(dataset)
    prefix, name = index_name(dataset)
    path = cache_dir / name
    if not path.exists():
        try:
            _build_cached(dataset, cache_dir, path)
        except OSError:  # a read-only or full cache folder: still search, just without keeping the index
            return _build_in_memory(dataset)
        for stale in cache_dir.glob(f"{prefix}-*.duckdb"):
            if stale != path:
                stale.unlink(missing_ok=True)
    con = duckdb.connect(str(path), read_only=True)
    load_fts(con)
    return con


def _build_in_memory(dataset: str | os.PathLike) -> duckdb.DuckDBPyConnection:
    con = connect_readonly(dataset)
    load_fts(con)
    build_index(con)
    return con


def _build_cached(dataset: str | os.PathLike, cache_dir: Path, path: Path) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=cache_dir)
    os.close(fd)
    os.unlink(tmp_name)  # DuckDB creates the file itself and refuses an empty one
    con = connect_readonly(dataset)
    try:
        load_fts(con)
        con.execute(f"ATTACH '{tmp_name.replace(chr(39), chr(39) * 2)}' AS idx")
        con.execute("USE idx")
        build_index(con)
        con.execute("CHECKPOINT idx")
        con.execute("USE memory")
        con.execute("DETACH idx")
        con.close()
        os.replace(tmp_name, path)  # concurrent builders: the last rename wins, each file is whole
    except BaseException:
        con.close()
        for leftover in (tmp_name, tmp_name + ".wal"):
            Path(leftover).unlink(missing_ok=True)
        raise
