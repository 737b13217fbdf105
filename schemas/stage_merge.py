"""Merging the rows that stages and runs wrote into one row per segment.

Each stage (one model's tasks) writes its own rows; a rerun or a resumed run
writes more. Which rows count is decided per task: the latest rows whose
config hash matches the task's current configuration. A recording whose
latest attempt at any task failed is one error row.
"""

from __future__ import annotations

from dataclasses import replace

from .segment_table import STATUS_ERROR, ModelIds, SegmentRow

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


def parse_config_hash(value: str | None) -> dict[str, str]:
    """'caption=ab12,transcript=cd34' -> {'caption': 'ab12', 'transcript': 'cd34'}."""
    pairs = (item.split("=", 1) for item in (value or "").split(",") if "=" in item)
    return {task: digest for task, digest in pairs}


def format_config_hash(hashes: dict[str, str]) -> str:
    return ",".join(f"{task}={digest}" for task, digest in sorted(hashes.items()))


def recording_key(row: SegmentRow) -> str:
    return row.source_sha256 or f"path:{row.source_path}"


def _row_tasks(row: SegmentRow, wanted: dict[str, str]) -> list[str]:
    """Tasks this row holds results for that still count (current hash, or a task not rerun now)."""
    return [task for task, digest in parse_config_hash(row.config_hash).items()
            if wanted.get(task, digest) == digest]


def done_tasks(rows: list[SegmentRow], wanted: dict[str, str], include_errors: bool = True) -> dict[str, set[str]]:
    """Per recording key: the tasks already finished with the current configuration."""
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
               current_paths: dict[str, list[str]] | None = None) -> list[SegmentRow]:
    """One row per segment from rows in write order (oldest first).

    `wanted`: the current run's task -> config hash; the segments come from
    those tasks' rows, and other tasks found in older rows are kept when their
    segments line up. `current_paths`: recording key -> source paths in this
    run; recordings not in it are left out, moved files get their new path,
    and identical files (same bytes) each get the rows computed once.
    """
    by_recording: dict[str, list[SegmentRow]] = {}
    for row in rows:
        key = recording_key(row)
        if current_paths is not None and key not in current_paths:
            continue
        by_recording.setdefault(key, []).append(row)
    merged: list[SegmentRow] = []
    for key, recording_rows in by_recording.items():
        out = _merge_recording(recording_rows, wanted)
        if current_paths is None:
            merged += out
        else:
            merged += [replace(r, source_path=path) for path in current_paths[key] for r in out]
    return sorted(merged, key=lambda r: (r.source_path, r.segment_index if r.segment_index is not None else -1))


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
    failed = [r for r in latest_status.values() if r.status == STATUS_ERROR]
    if failed:
        return [failed[-1]]
    base_tasks = [t for t in wanted if t in task_rows] or list(task_rows)
    if not base_tasks:
        return []
    base = task_rows[base_tasks[0]]
    out = []
    for index in sorted(base):
        segment = base[index]
        data = segment.to_dict()
        for columns in TASK_COLUMNS.values():
            for column in columns:
                data[column] = None
        flags, scores, models, hashes = [], {}, {}, {}
        for task, by_index in task_rows.items():
            source = by_index.get(index)
            if source is None or (source.start_s, source.end_s) != (segment.start_s, segment.end_s):
                continue  # another segmentation: this task's rows do not line up
            for column in TASK_COLUMNS.get(task, ()):
                data[column] = getattr(source, column)
            scores.update({name: getattr(source.scores, name) for name in TASK_SCORES.get(task, ())})
            flags += [f for f in source.flags if f.endswith(f":{task}")]
            if task in ModelIds.__dataclass_fields__:
                models[task] = getattr(source.models, task)
            hashes[task] = parse_config_hash(source.config_hash)[task]
        data.update(flags=sorted(set(flags)), scores=scores, models=models, config_hash=format_config_hash(hashes))
        out.append(SegmentRow.from_dict(data))
    return out

