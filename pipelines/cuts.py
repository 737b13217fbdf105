"""One cut per recording: a run that cuts recordings differently must not drop the tasks it does not redo.

A dataset row is one segment, so every task of a recording sits on the same
segments. A run with another `--granularity` or `--max-chunk-s` cuts new
segments for the tasks it runs, and the merge keeps a stored task only where
its segments line up: captions made at `--granularity chunk`, followed by a
run of `--tasks transcript --granularity utterance`, were dropped without a
word, and with them the GPU hours they cost. The run now refuses before it
starts, naming the tasks to add (or the options to go back to).

A task's config hash covers its cut, but a hash cannot be read back, so the
cut of each hash is kept beside the rows: in each part's manifest (`cut`) and
in the final file's run config (`cuts`, carried from run to run). A file from
before that holds its last run's options and task hashes, which say the same
for that run's tasks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from omni_caption.schemas import STATUS_ERROR, DatasetInfo, PartStore, RowState, parse_config_hash, recording_key

from .options import RunOptions
from .speakers import SPEAKER_TASK


class CutChanged(RuntimeError):
    """This run would cut recordings differently from stored tasks it does not redo, and so drop them."""


def cut_of(options: RunOptions) -> str:
    return _cut(options.granularity, options.max_chunk_s)


def _cut(granularity: str, max_chunk_s: float) -> str:
    # The options that move segment boundaries, in the words that set them (aut_window does not move them).
    return f"--granularity {granularity} --max-chunk-s {float(max_chunk_s):g}"


def cuts_in(run_config: dict) -> dict[str, str]:
    """Config hash -> cut, from a final file's run config or a part's manifest."""
    if isinstance(run_config.get("cuts"), dict):
        return dict(run_config["cuts"])
    if isinstance(run_config.get("cut"), str):  # a part: the hashes of its stage's tasks
        return {digest: run_config["cut"] for digest in (run_config.get("tasks") or {}).values()}
    options = run_config.get("options") or {}
    if "granularity" not in options or "max_chunk_s" not in options:
        return {}
    cut = _cut(options["granularity"], options["max_chunk_s"])  # a final file written before cuts were kept
    return {task["config_hash"]: cut for task in (run_config.get("tasks") or {}).values()
            if isinstance(task, dict) and "config_hash" in task}


def known_cuts(store: PartStore) -> dict[str, str]:
    cuts: dict[str, str] = {}
    for path in store.stored_paths():
        try:
            cuts.update(cuts_in(DatasetInfo.from_metadata(pq.read_schema(path).metadata).run_config))
        except (OSError, pa.ArrowException, ValueError):  # unreadable here: the run says so where it reads rows
            continue
    return cuts


def check_cut(states: Iterable[RowState], inputs: set[str], wanted: dict[str, str], cut: str,
              known: dict[str, str], out: object) -> None:
    """Raise CutChanged if a stored task of these inputs that this run does not redo was cut otherwise."""
    latest: dict[tuple[str, str], tuple[str, str]] = {}  # (recording, task) -> (config hash, status), last wins
    for state in states:
        key = recording_key(state)
        if key in inputs:
            for task, digest in parse_config_hash(state.config_hash).items():
                latest[(key, task)] = (digest, state.status)
    dropped: Counter[tuple[str, str]] = Counter()
    for (_, task), (digest, status) in latest.items():
        old = known.get(digest)
        if task not in wanted and status != STATUS_ERROR and old is not None and old != cut:
            dropped[(task, old)] += 1
    if not dropped:
        return
    held = "; ".join(f"{task} for {n} of these recordings cut with {old}" for (task, old), n in sorted(dropped.items()))
    redo = sorted({task for task, _ in dropped})
    how = " and ".join(filter(None, [
        f"add {','.join(t for t in redo if t != SPEAKER_TASK)} to --tasks" if set(redo) - {SPEAKER_TASK} else "",
        "add --diarize" if SPEAKER_TASK in redo else ""]))
    olds = sorted({old for _, old in dropped})
    raise CutChanged(f"--out {out} holds {held}, and this run cuts with {cut}: a row is one segment of every task, "
                     f"so those would be dropped. {how[0].upper()}{how[1:]} to redo them at the new cut, run with "
                     f"{' or '.join(olds)} to keep them, or give another --out")
