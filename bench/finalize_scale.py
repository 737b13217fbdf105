"""The end of a run at scale: resume check and finalize of a store holding N rows, whole-objects vs chunked.

    python bench/finalize_scale.py [--rows 1000000] [--recordings 2000] [--new-share 0.1]
                                   [--part-recordings 20] [--out DIR]

The store is what adding recordings to an archive looks like: the previous
output holds (1 - new-share) of the recordings, this run's parts the rest, in
parts of --part-recordings recordings (1: a run with --commit-every 1, or one
over many short clips, resumed after a crash: thousands of parts). Rows are
`dataset_scale.build_table`'s. Each way runs in a fresh process (spawned; its
peak RSS is its own VmHWM) on its own copy of the store:

- objects: what `run_corpus` did before: every stored row as a `SegmentRow`
  (`existing_rows`), `done_tasks`, `merge_rows`, one `rows_to_table`, write;
- chunked: `done_tasks` over `StoredRows.states()` (four columns), then
  `merge_in_chunks` into `finalize_chunks` (a chunk of recordings at a time);
- rerun: what a run with nothing to do does now (use --new-share 0): the
  output is found current (`PartStore.holds_exactly`) and only read, its rows
  counted for the run's report, never rewritten.

Both outputs must be equal, row for row.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from dataset_scale import build_table  # noqa: E402

WANTED = {"caption": "ab12", "summary": "9f00", "transcript": "cd34"}


def make_store(out: Path, rows: int, recordings: int, new_share: float,
               part_recordings: int = 20) -> dict[str, list[str]]:
    """Write the previous output and this run's parts; return today's paths (key -> source paths)."""
    from omni_caption.schemas import DatasetInfo, PartStore, write_table_atomic
    from omni_caption.schemas.stored_rows import recording_keys

    table = build_table(rows, recordings)
    paths = table.column("source_path").combine_chunks()
    unique = pc.unique(paths).to_pylist()
    new = unique[int(len(unique) * (1 - new_share)):]
    store = PartStore(out / "captions.parquet")
    info = DatasetInfo(tool_version="bench", run_config={})
    is_new = pc.is_in(paths, value_set=pa.array(new, type=pa.string()))
    write_table_atomic(table.filter(pc.invert(is_new)), store.out_path, info)
    for i in range(0, len(new), part_recordings):
        group = pa.array(new[i:i + part_recordings])
        store.write_part(table.filter(pc.is_in(paths, value_set=group)), {"tool_version": "bench"})
    keys = recording_keys(table.column("source_sha256").combine_chunks(), paths).to_pylist()
    return {key: [path] for key, path in dict(zip(keys, paths.to_pylist())).items()}


def finalize(way: str, out: str, current_paths: dict[str, list[str]], result) -> None:
    from omni_caption.schemas import DatasetInfo, PartStore, done_tasks, merge_in_chunks, merge_rows

    store = PartStore(Path(out) / "captions.parquet")
    info = DatasetInfo(tool_version="bench", run_config={})
    started = time.perf_counter()
    if way == "objects":
        done = done_tasks(store.existing_rows(), WANTED)
    else:
        done = done_tasks(store.stored().states(), WANTED)
    resume_s = time.perf_counter() - started
    started = time.perf_counter()
    if way == "objects":
        store.finalize(merge_rows(store.existing_rows(), WANTED, current_paths), info)
    elif way == "rerun":
        from omni_caption.pipelines.run import COUNTED_COLUMNS, RunSummary, _counted

        if not store.holds_exactly(info, audio=False):
            result.put({"error": "rerun: the output is not found current (give --new-share 0)"})
            return
        for _ in _counted(RunSummary(), store.final_row_chunks(columns=COUNTED_COLUMNS)):
            pass
    else:
        store.finalize_chunks(merge_in_chunks(store.stored(), WANTED, current_paths), info)
    result.put({"resume_s": resume_s, "finalize_s": time.perf_counter() - started, "done": len(done),
                "peak_rss_mib": peak_rss_mib()})


def peak_rss_mib() -> float:
    """This process's own high-water mark: `ru_maxrss` would carry over the parent's across fork and exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_in_fresh_process(way: str, out: Path, current_paths: dict[str, list[str]]) -> dict:
    context = multiprocessing.get_context("spawn")
    result = context.Queue()
    process = context.Process(target=finalize, args=(way, str(out), current_paths, result))
    process.start()
    figures = result.get()
    process.join()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--recordings", type=int, default=2_000)
    parser.add_argument("--new-share", type=float, default=0.1, help="Share of recordings in this run's parts.")
    parser.add_argument("--part-recordings", type=int, default=20, help="Recordings per part of this run.")
    parser.add_argument("--ways", default="objects,chunked")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="omni-finalize-"))
    print(f"python {platform.python_version()}  pyarrow {pa.__version__}  cpus {os.cpu_count()}")
    started = time.perf_counter()
    source = out / "store"
    source.mkdir(parents=True, exist_ok=True)
    current_paths = make_store(source, args.rows, args.recordings, args.new_share, args.part_recordings)
    parts = len(list((source / "captions.parquet.parts").glob("part-*.parquet")))
    print(f"store: {args.rows:,} rows, {args.recordings:,} recordings, {parts} parts "
          f"(built in {time.perf_counter() - started:.1f} s)")
    outputs = {}
    for way in args.ways.split(","):
        copy = out / way
        shutil.copytree(source, copy)
        figures = run_in_fresh_process(way, copy, current_paths)
        if "error" in figures:
            raise SystemExit(figures["error"])
        outputs[way] = pq.read_table(copy / "captions.parquet")
        print(f"  {way:<8} resume check {figures['resume_s']:6.2f} s   finalize {figures['finalize_s']:6.2f} s   "
              f"peak RSS {figures['peak_rss_mib']:7,.0f} MiB   ({figures['done']:,} recordings done)")
    tables = [table for way, table in outputs.items() if way != "rerun"]  # rerun writes nothing
    if len(tables) > 1:
        same = all(t.replace_schema_metadata().equals(tables[0].replace_schema_metadata()) for t in tables[1:])
        print(f"outputs equal: {same}  ({tables[0].num_rows:,} rows)")
        if not same:
            raise SystemExit(1)
    shutil.rmtree(out)


if __name__ == "__main__":
    main()
