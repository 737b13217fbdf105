"""The dataset layer at scale: write 1M segment rows, then time query, info, search and export.

    python bench/dataset_scale.py [--rows 1000000] [--recordings 2000] [--out DIR] [--python-rows] [--han]

Synthetic but realistically shaped rows: utterance-sized segments (1-8 s),
captions of 40-160 words, transcripts of about 2.5 words per second,
a summary per recording (repeated on its rows, as in schema v1), 6% flagged
rows, 1% error recordings. Words follow a Zipf law over a 20,000-word
vocabulary, with a few real words ("dog", "barking", "river", ...) placed at
realistic ranks so searches have a realistic number of hits. `--han` makes
the other words 1-3 Han characters, written with no spaces between them as
Chinese is, to time the search index's character pairs.

The table is built column-wise with pyarrow (so building it costs seconds, not
the figure being measured) and written with the project's writer,
`write_table_atomic`. `--python-rows` also times the round trip through
`SegmentRow` objects (`table_to_rows` + `rows_to_table`), the path
`PartStore.finalize` takes today.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from omni_caption.schemas import SEGMENT_SCHEMA, DatasetInfo, run_query, write_table_atomic
from omni_caption.schemas.dataset_info import describe_dataset
from omni_caption.schemas.duckdb_views import connect_readonly
from omni_caption.schemas.export_formats import export_hf, export_jsonl, export_subtitles
from omni_caption.schemas.fts_search import ilike_search, search_dataset
from omni_caption.schemas.search_index import plain_docs_view

VOCAB = 20_000
# word -> Zipf rank: common, middling and rare words for the searches.
PLANTED = {"the": 0, "speaks": 40, "river": 300, "meeting": 450, "dog": 900, "barking": 2500, "tin": 6000}
QUERIES = {
    "count": "SELECT count(*) FROM segments",
    "recordings by status": "SELECT status, count(*) FROM recordings GROUP BY status",
    "flag filter": "SELECT count(*) FROM segments WHERE list_contains(flags, 'truncated:caption')",
    "one recording": "SELECT segment_index, start_s, caption FROM segments "
                     "WHERE source_path = 'archive/10/rec_01000.flac' ORDER BY segment_index",
    "transcript ILIKE": "SELECT count(*) FROM segments WHERE transcript ILIKE '%barking%'",
    "hours by language": "SELECT language, sum(end_s - start_s) / 3600 FROM segments GROUP BY 1 ORDER BY 2 DESC",
}


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vocabulary(rng: np.random.Generator, han: bool = False) -> pa.Array:
    if han:
        letters, lengths = np.array([chr(c) for c in range(0x4E00, 0x4E00 + 3000)]), (1, 4)
    else:
        letters, lengths = np.array(list("abcdefghijklmnopqrstuvwxyz")), (3, 10)
    words = {"".join(rng.choice(letters, rng.integers(*lengths))) for _ in range(VOCAB * 2)}
    words = sorted(words - set(PLANTED))[:VOCAB]
    rng.shuffle(words)
    for word, rank in PLANTED.items():
        words[rank] = word
    return pa.array(words)


def _texts(rng: np.random.Generator, vocab: pa.Array, lengths: np.ndarray, sep: str = " ") -> pa.Array:
    """One string per length, of that many Zipf-distributed words, joined in C++ by pyarrow."""
    ranks = np.arange(1, len(vocab) + 1)
    p = 1.0 / (ranks + 2.7)
    ids = rng.choice(len(vocab), size=int(lengths.sum()), p=p / p.sum()).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), vocab.take(pa.array(ids))), sep)


def build_table(rows: int, recordings: int, seed: int = 0, han: bool = False) -> pa.Table:
    rng = np.random.default_rng(seed)
    vocab = vocabulary(rng, han)
    texts = functools.partial(_texts, sep="" if han else " ")
    errors = max(1, recordings // 100)
    ok_recordings = recordings - errors
    counts = np.full(ok_recordings, (rows - errors) // ok_recordings)
    counts[: (rows - errors) - counts.sum()] += 1
    shift = rng.integers(-counts.min() // 2, counts.min() // 2, ok_recordings // 2)
    counts[0: 2 * len(shift): 2] += shift
    counts[1: 2 * len(shift): 2] -= shift
    per_row = np.repeat(np.arange(ok_recordings), counts)
    n_ok = len(per_row)
    seg_index = np.concatenate([np.arange(c) for c in counts]).astype(np.int32)
    duration = rng.uniform(1.0, 8.0, n_ok)
    gap = rng.uniform(0.0, 1.5, n_ok)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    step = duration + gap
    cumulative = np.cumsum(step)
    base = np.repeat(cumulative[first] - step[first], counts)
    end = cumulative - base - gap
    start = end - duration
    rec_duration = np.repeat(np.add.reduceat(step, first), counts)

    rec_ids = np.array([f"{i:016x}" for i in rng.integers(0, 2**63, recordings)])
    sha = np.array([f"{i:016x}" * 4 for i in rng.integers(0, 2**63, recordings)])
    paths = np.array([f"archive/{i // 100:02d}/rec_{i:05d}.flac" for i in range(recordings)])
    languages = np.where(rng.random(ok_recordings) < 0.8, "English", np.where(rng.random(ok_recordings) < 0.5,
                                                                            "German", "French"))
    summaries = texts(rng, vocab, rng.integers(80, 150, ok_recordings))
    n_flags = np.where(rng.random(n_ok) < 0.05, 1, 0) + np.where(rng.random(n_ok) < 0.01, 1, 0)
    flag_names = np.array(["truncated:caption", "repetition:transcript", "rate:transcript", "empty:transcript"])
    flag_values = flag_names[rng.integers(0, len(flag_names), int(n_flags.sum()))]
    flags = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(n_flags)]).astype(np.int32)),
                                     pa.array(flag_values))
    f32 = lambda a: pa.array(a.astype(np.float32))  # noqa: E731
    constant = lambda value: pa.repeat(pa.scalar(value), n_ok)  # noqa: E731
    scores = struct_of("scores", n_ok, {
        "caption_avg_logprob": f32(rng.normal(-0.4, 0.1, n_ok)),
        "caption_tokens": pa.array(rng.integers(40, 400, n_ok).astype(np.int32)),
        "transcript_avg_logprob": f32(rng.normal(-0.2, 0.05, n_ok)),
        "transcript_tokens": pa.array(rng.integers(2, 40, n_ok).astype(np.int32)),
        "compression_ratio": f32(rng.normal(1.6, 0.2, n_ok)), "chars_per_s": f32(rng.normal(15, 3, n_ok))})
    models = struct_of("models", n_ok, {"caption": constant("Qwen/Qwen3-Omni-30B-A3B-Captioner@main"),
                                        "transcript": constant("Qwen/Qwen3-Omni-30B-A3B-Instruct@main"),
                                        "summary": constant("Qwen/Qwen3-Omni-30B-A3B-Thinking@main")})
    columns = {
        "recording_id": rec_ids[per_row], "source_path": paths[per_row], "source_sha256": sha[per_row],
        "recording_duration_s": rec_duration, "segment_index": seg_index, "start_s": start, "end_s": end,
        "speaker": pa.array(np.where(rng.random(n_ok) < 0.5, "SPEAKER_00", "SPEAKER_01")),
        "speech_ratio": f32(rng.uniform(0.5, 1.0, n_ok)),
        "caption": texts(rng, vocab, rng.integers(40, 160, n_ok)),
        "transcript": texts(rng, vocab, np.maximum(1, (duration * 2.5).astype(np.int64))),
        "language": languages[per_row], "summary": summaries.take(pa.array(per_row)), "flags": flags,
        "scores": scores, "models": models, "prompt_version": constant("p-3f2a9c"),
        "config_hash": constant("caption=ab12,summary=9f00,transcript=cd34"), "status": constant("ok"),
    }
    # Columns not generated here (and any a later schema version adds) are null.
    ok = pa.table({f.name: columns.get(f.name, pa.nulls(n_ok, f.type)) for f in SEGMENT_SCHEMA}).cast(SEGMENT_SCHEMA)
    failed = [{"recording_id": rec_ids[i], "source_path": paths[i], "source_sha256": sha[i], "status": "error",
               "error": "FFmpeg cannot read it as audio or video (Invalid data found when processing input)",
               "config_hash": "caption=ab12,summary=9f00,transcript=cd34"}
              for i in range(ok_recordings, recordings)]
    return pa.concat_tables([ok, pa.Table.from_pylist(failed, schema=SEGMENT_SCHEMA)])


def struct_of(column: str, n: int, children: dict[str, pa.Array]) -> pa.StructArray:
    """A struct column of SEGMENT_SCHEMA from the children given, the others null."""
    fields = list(SEGMENT_SCHEMA.field(column).type)
    return pa.StructArray.from_arrays([children.get(f.name, pa.nulls(n, f.type)) for f in fields], fields=fields)


def timed(fn, repeat: int = 1) -> tuple[float, float, object]:
    """(first, median) seconds over `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return times[0], statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--recordings", type=int, default=2_000)
    parser.add_argument("--out", type=Path, default=None, help="Folder for the files (default: a temp folder).")
    parser.add_argument("--python-rows", action="store_true", help="Also time table_to_rows + rows_to_table.")
    parser.add_argument("--row-group-rows", type=int, default=131_072,
                        help="Also time the queries on a copy written with row groups of this many rows (0: skip).")
    parser.add_argument("--no-search", action="store_true")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--han", action="store_true", help="Han words with no spaces between them (see above).")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="omni-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "captions.parquet"

    print(f"python {platform.python_version()}  duckdb {duckdb.__version__}  pyarrow {pa.__version__}  "
          f"numpy {np.__version__}  cpus {os.cpu_count()}")
    build_s, _, table = timed(lambda: build_table(args.rows, args.recordings, han=args.han))
    text_mib = sum(table.column(c).nbytes for c in ("caption", "transcript", "summary")) / 2**20
    print(f"rows {table.num_rows:,}  recordings {args.recordings:,}  in-memory text {text_mib:,.0f} MiB  "
          f"(generated in {build_s:.1f} s)")
    info = DatasetInfo(tool_version="bench", run_config={"bench": "dataset_scale"})
    write_s, _, _ = timed(lambda: write_table_atomic(table, path, info))
    print(f"write_table_atomic  {write_s:6.2f} s   file {path.stat().st_size / 2**20:,.0f} MiB   "
          f"peak RSS {rss_mib():,.0f} MiB")
    if args.python_rows:
        from omni_caption.schemas import rows_to_table, table_to_rows

        to_rows_s, _, rows = timed(lambda: table_to_rows(table))
        to_table_s, _, _ = timed(lambda: rows_to_table(rows))
        del rows
        print(f"table_to_rows {to_rows_s:.1f} s   rows_to_table {to_table_s:.1f} s   peak RSS {rss_mib():,.0f} MiB")
    grouped = out / f"captions-rg{args.row_group_rows}.parquet"
    if args.row_group_rows:
        import pyarrow.parquet as pq

        grouped_s, _, _ = timed(lambda: pq.write_table(table.replace_schema_metadata(info.to_metadata()), grouped,
                                                       compression="zstd", row_group_size=args.row_group_rows))
        print(f"same rows, row groups of {args.row_group_rows:,}: write {grouped_s:.2f} s   "
              f"file {grouped.stat().st_size / 2**20:,.0f} MiB")
    table = None  # free it before the queries: they should not compete with it for memory

    datasets = [("as written by write_table_atomic", path)]
    if args.row_group_rows:
        datasets.append((f"row groups of {args.row_group_rows:,} rows", grouped))
    for label, dataset in datasets:
        print(f"\nquery, {label} (run_query: new connection and views each time; first / median of 5)")
        for name, sql in QUERIES.items():
            first, median, _ = timed(lambda: run_query(dataset, sql).fetchall(), repeat=5)
            print(f"  {name:<22} {first * 1000:8.1f} ms {median * 1000:8.1f} ms")
        first, median, _ = timed(lambda: describe_dataset(dataset), repeat=3)
        print(f"  {'info (describe)':<22} {first * 1000:8.1f} ms {median * 1000:8.1f} ms")
    if args.no_search:
        return

    print("\nsearch")
    cache = out / "search-cache"
    cold_s, _, hits = timed(lambda: search_dataset(path, "dog barking", cache_dir=cache))
    index_mib = sum(f.stat().st_size for f in cache.glob("*.duckdb")) / 2**20
    print(f"  first search (load fts, copy, build index, cache it) {cold_s:.1f} s   index file {index_mib:,.0f} MiB   "
          f"peak RSS {rss_mib():,.0f} MiB")
    for query in ("dog barking", "river meeting", "tin"):
        first, median, result = timed(lambda: search_dataset(path, query, cache_dir=cache), repeat=3)
        print(f"  cached {query!r:<16} {first * 1000:8.1f} ms {median * 1000:8.1f} ms  ({len(result.hits)} hits)")
    plain = connect_readonly(path)
    plain_docs_view(plain)
    first, _, _ = timed(lambda: ilike_search(plain, ["dog", "barking"], 20))
    print(f"  ilike fallback 'dog barking' {first * 1000:8.1f} ms")

    if args.no_export:
        return
    print("\nexport")
    for name, fn in (("jsonl", lambda: export_jsonl(path, out / "x.jsonl")),
                     ("hf", lambda: export_hf(path, out / "hf.parquet")),
                     ("srt", lambda: export_subtitles(path, out / "srt", "srt"))):
        seconds, _, result = timed(fn)
        print(f"  {name:<6} {seconds:6.1f} s  ({len(result.paths)} files)")
    print(f"\npeak RSS {rss_mib():,.0f} MiB   files in {out}")


if __name__ == "__main__":
    main()
