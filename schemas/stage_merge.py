"""Merging the rows that stages and runs wrote into one row per segment.

Each stage (one model's tasks) writes its own rows; a rerun or a resumed run
writes more. Which rows count is decided per task: the latest rows whose
config hash matches the task's current configuration.

A recording where no task with results of its own (caption, transcript,
reasoning, speaker) succeeded is one error row. Where some did and others
failed, the rows keep what succeeded, status 'ok', with a `failed:<task>` flag
and the failure in `error` ("summary failed: ..."): one failed summary does
not hide forty minutes of captions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from functools import lru_cache

from .segment_table import ROW_FIELDS, SOURCE_FLAG_SUFFIX, STATUS_ERROR, ModelIds, Scores, SegmentRow
from .stored_rows import RowState, StoredRows

MERGE_CHUNK_ROWS = 50_000

TASK_COLUMNS = {
    "caption": ("caption",),
    "transcript": ("transcript", "transcript_raw", "language"),
    "reasoning": ("reasoning", "answer"),
    "summary": ("summary", "summary_reasoning"),
    "speaker": ("speaker",),  # the diarization stage
    "voice": ("summary_audio_path", "summary_audio_duration_s", "summary_audio_source"),  # `speak`
}
TASK_SCORES = {
    "caption": ("caption_avg_logprob", "caption_tokens", "caption_compression_ratio", "caption_temperature"),
    "transcript": ("transcript_avg_logprob", "transcript_tokens", "compression_ratio", "chars_per_s",
                   "transcript_temperature"),
    "reasoning": ("reasoning_avg_logprob", "reasoning_tokens", "reasoning_compression_ratio",
                  "reasoning_temperature"),
    "summary": (),
    "speaker": (),
    "voice": (),
}

# Tasks computed from the others' results: alone, they do not make a recording worth its rows.
DERIVED_TASKS = frozenset({"summary", "voice"})

_NO_TASK_COLUMNS = {column: None for columns in TASK_COLUMNS.values() for column in columns}


def parse_config_hash(value: str | None) -> dict[str, str]:
    """'caption=ab12,transcript=cd34' -> {'caption': 'ab12', 'transcript': 'cd34'}."""
    return dict(_parsed_config_hash(value))


@lru_cache(maxsize=4096)
def _parsed_config_hash(value: str | None) -> tuple[tuple[str, str], ...]:
    # A dataset holds few distinct hashes, parsed for every row of a merge: parse each once.
    return tuple(tuple(item.split("=", 1)) for item in (value or "").split(",") if "=" in item)


def format_config_hash(hashes: dict[str, str]) -> str:
    return ",".join(f"{task}={digest}" for task, digest in sorted(hashes.items()))


def recording_key(row: SegmentRow | RowState) -> str:
    return row.source_sha256 or f"path:{row.source_path}"


def _row_tasks(row: SegmentRow | RowState, wanted: dict[str, str]) -> list[str]:
    """Tasks this row holds results for that still count (current hash, or a task not rerun now)."""
    return [task for task, digest in _parsed_config_hash(row.config_hash) if wanted.get(task, digest) == digest]


def done_tasks(rows: Iterable[SegmentRow | RowState], wanted: dict[str, str],
               include_errors: bool = True) -> dict[str, set[str]]:
    """Per recording key: the tasks already finished with the current configuration.

    `rows` in write order; `StoredRows.states()` gives them without reading whole rows.
    """
    latest: dict[tuple[str, str], str] = {}
    for row in rows:
        for task in _row_tasks(row, wanted):
            latest[(recording_key(row), task)] = row.status
    done: dict[str, set[str]] = {}
    for (key, task), status in latest.items():
        if task in wanted and (status != STATUS_ERROR or include_errors):
            done.setdefault(key, set()).add(task)
    return done


def merge_rows(rows: list[SegmentRow], wanted: dict[str, str],
               current_paths: dict[str, list[str]] | None = None,
               kept: frozenset[str] = frozenset()) -> list[SegmentRow]:
    """One row per segment from rows in write order (oldest first).

    `wanted`: the current run's task -> config hash; the segments come from
    those tasks' rows, and other tasks found in older rows are kept when their
    segments line up. `current_paths`: recording key -> source paths in this
    run; recordings not in it are left out, moved files get their new path,
    and identical files (same bytes) each get the rows computed once.
    `kept`: keys of recordings of earlier runs that this run does not have;
    each is merged as its own last run left it (latest_hashes), not by `wanted`.
    """
    by_recording: dict[str, list[SegmentRow]] = {}
    for row in rows:
        key = recording_key(row)
        if current_paths is not None and key not in current_paths:
            continue
        by_recording.setdefault(key, []).append(row)
    merged: list[SegmentRow] = []
    for key, recording_rows in by_recording.items():
        out = _merge_recording(recording_rows, latest_hashes(recording_rows) if key in kept else wanted)
        if current_paths is None:
            merged += out
        else:
            merged += [r if r.source_path == path else replace(r, source_path=path)
                       for path in current_paths[key] for r in out]
    return sorted(merged, key=lambda r: (r.source_path, r.segment_index if r.segment_index is not None else -1))


def merge_in_chunks(stored: StoredRows, wanted: dict[str, str], current_paths: dict[str, list[str]] | None = None,
                    chunk_rows: int = MERGE_CHUNK_ROWS, kept: frozenset[str] = frozenset()) -> Iterator[list[SegmentRow]]:
    """`merge_rows` over everything stored, read and merged a chunk of about `chunk_rows` stored rows at a time.

    With `current_paths`, chunks follow the output order (source path), so
    their concatenation is exactly what `merge_rows` gives for all rows at
    once. Without, the same rows come, each recording once, in chunks ordered
    by the first path the recording was stored under.
    """
    if current_paths is None:  # each recording once, ordered by the first path it was stored under
        entries = sorted((min(stored.stored_paths(key)), key) for key in stored.keys())
    else:
        entries = sorted((path, key) for key, paths in current_paths.items() if stored.row_count(key)
                         for path in paths)
    chunk: dict[str, list[str]] = {}
    size = 0
    for i, (path, key) in enumerate(entries):
        size += stored.row_count(key) if key not in chunk else 0
        chunk.setdefault(key, []).append(path)
        if size >= chunk_rows or i == len(entries) - 1:
            yield merge_rows(stored.rows_of(chunk), wanted, None if current_paths is None else chunk, kept)
            chunk, size = {}, 0


def latest_hashes(rows: Iterable[SegmentRow | RowState]) -> dict[str, str]:
    """Task -> the config hash of the last rows (in write order) that hold it: how the last run left it."""
    latest: dict[str, str] = {}
    for row in rows:
        latest.update(_parsed_config_hash(row.config_hash))
    return latest


def _merge_recording(rows: list[SegmentRow], wanted: dict[str, str]) -> list[SegmentRow]:
    latest_status: dict[str, SegmentRow] = {}
    task_rows: dict[str, dict[int, SegmentRow]] = {}
    for row in rows:
        for task in _row_tasks(row, wanted):
            latest_status[task] = row
            if row.status == STATUS_ERROR:
                task_rows.pop(task, None)
            else:
                task_rows.setdefault(task, {})[row.segment_index] = row
    failed = {task: row for task, row in latest_status.items() if row.status == STATUS_ERROR}
    if failed and all(task in DERIVED_TASKS for task in task_rows):
        # One error row, holding every failed task's hash: with only the last's, the others read as never tried
        # and every rerun tried the unreadable file again.
        hashes = {task: parse_config_hash(row.config_hash)[task] for task, row in failed.items()}
        return [replace(list(failed.values())[-1], config_hash=format_config_hash(hashes))]
    failure = _failure_line(failed)
    base_tasks = [t for t in wanted if t in task_rows and t not in DERIVED_TASKS] or \
        [t for t in wanted if t in task_rows] or list(task_rows)
    if not base_tasks:
        return []
    base = task_rows[base_tasks[0]]
    out = []
    for index in sorted(base):
        segment = base[index]
        data = {name: getattr(segment, name) for name in ROW_FIELDS}
        data.update(_NO_TASK_COLUMNS)
        flags, scores, models, hashes, sources = [], {}, {}, {}, {}
        for task, by_index in task_rows.items():
            source = by_index.get(index)
            if source is None or (source.start_s, source.end_s) != (segment.start_s, segment.end_s):
                continue  # another segmentation: this task's rows do not line up
            sources[task] = source
            for column in TASK_COLUMNS.get(task, ()):
                data[column] = getattr(source, column)
            if not data["audio"] and source.audio:  # embedded with an earlier task: not decoded again
                data["audio"] = source.audio
            scores.update({name: getattr(source.scores, name) for name in TASK_SCORES.get(task, ())})
            flags += [f for f in source.flags if f.endswith(f":{task}")]
            if task in ModelIds.__dataclass_fields__:
                models[task] = getattr(source.models, task)
            hashes[task] = parse_config_hash(source.config_hash)[task]
        if "voice" in sources and not _voice_still_speaks(sources["voice"], hashes):
            data.update({column: None for column in TASK_COLUMNS["voice"]})
            models.pop("voice", None)
            hashes.pop("voice")
        flags += [f"failed:{task}" for task in failed]
        flags += [f for f in segment.flags if f.endswith(SOURCE_FLAG_SUFFIX)]
        data.update(flags=tuple(sorted(set(flags))), scores=Scores(**scores), models=ModelIds(**models),
                    config_hash=format_config_hash(hashes), error=failure)
        out.append(SegmentRow(**data))
    return out


def _voice_still_speaks(voiced: SegmentRow, hashes: dict[str, str]) -> bool:
    """Whether the WAV `speak` recorded on this row still voices its text: the task that wrote the voiced
    column has the config it had when it was voiced. A summary redone since (another model, a longer cap)
    says something else, and its row must not point at a WAV of the old words."""
    task = next((t for t, columns in TASK_COLUMNS.items() if voiced.summary_audio_source in columns), None)
    return task is not None and parse_config_hash(voiced.config_hash).get(task) == hashes.get(task)


def _failure_line(failed: dict[str, SegmentRow]) -> str | None:
    """'summary failed: <why>', tasks that failed in one error row named together, in one line."""
    by_row: dict[int, tuple[list[str], SegmentRow]] = {}
    for task, row in failed.items():
        by_row.setdefault(id(row), ([], row))[0].append(task)
    return "; ".join(f"{', '.join(sorted(tasks))} failed: {row.error}" for tasks, row in by_row.values()) or None

