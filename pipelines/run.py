"""The main job: folder(s) of recordings -> one Parquet file.

Stage by stage, like WhisperX: one model is loaded at a time (a 30B model
fills an 80 GB GPU) and runs its tasks over every recording, writing an atomic
part per group of recordings as it goes. The parts are merged into the final
file at the end, so a crash never loses a finished group.

This module is the driver: it decides what is pending, writes every part and
the final file. An engine (local, or Ray) only turns groups into rows, with
the same stage functions (pipelines/stages.py).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from omni_caption import __version__
from omni_caption.captioner import (DEFAULT_MAX_NEW_TOKENS, PROMPT_VERSION, TINY_RANDOM_MAX_NEW_TOKENS, TaskConfig,
                                    with_agreement_flag)
from omni_caption.model import resolve_model
from omni_caption.model.families import detect_family
from omni_caption.model.hub import hub_access
from omni_caption.model.loading import check_device_name, pick_device
from omni_caption.schemas import (STATUS_ERROR, DatasetInfo, PartStore, SegmentRow, StoredRows, done_tasks,
                                  merge_in_chunks, rows_to_table)

from .cuts import check_cut, cut_of, known_cuts
from .decode import check_decoding_available
from .discover import SourceFile, check_found, discover, ignored_line, path_list
from .embed_audio import embed_segment_audio
from .file_hashes import hashes_file, resume_keys
from .grouping import HeaderSeconds, auto_groups, fixed_groups, group_audio_s
from .local_engine import LocalEngine
from .options import ENGINES, RayOptions, RunOptions
from .output_checks import check_output
from .output_lock import OutputLock
from .progress import RunProgress
from .segmenter import source_findings
from .speakers import SPEAKER_TASK, diarization_hash
from .stages import GroupWork, ModelStage, SpeakerStage, plan_stages

__all__ = ["ENGINES", "EarlierRecordings", "RayOptions", "RunOptions", "RunSummary",
           "paths_by_key", "run_corpus", "still_to_do", "task_configs", "wanted_hashes"]


@dataclass
class RunSummary:
    recordings: int = 0
    ok: int = 0
    partial: int = 0  # recordings with rows where some task failed (flag failed:<task>, `error` says why)
    errors: int = 0
    segments: int = 0
    flagged_segments: int = 0
    resumed: int = 0  # recordings whose results were already in the output
    kept: int = 0  # recordings of earlier runs, not among these inputs, left in the output as they were
    ignored: str | None = None  # the input folders' files of other kinds, by extension (discover.ignored_line)
    audio_s: float = 0.0  # the output's recordings, this run's and resumed ones
    run_audio_s: float = 0.0  # the recordings this run worked on: what the speed is of
    wall_s: float = 0.0
    error_lines: list[str] = field(default_factory=list)
    warning_lines: list[str] = field(default_factory=list)  # e.g. a recording whose audio ends early
    nonsense_model: bool = False

    @property
    def realtime_factor(self) -> float:
        """Audio worked on per second of this run: resumed recordings cost nothing, so they do not count."""
        return self.run_audio_s / self.wall_s if self.wall_s > 0 else 0.0


def input_roots(inputs: list[str | Path], listed: Sequence[str]) -> list[str]:
    """Where the recordings' `source_path`s are relative to, for the run config (export finds files by it):
    the inputs, and the working folder that a list's relative paths start from."""
    roots = [str(Path(p).resolve()) for p in inputs]
    return roots + [str(Path.cwd())] if listed else roots


def task_configs(options: RunOptions) -> list[TaskConfig]:
    """One config per task, each knowing its model's family; a task or option the family cannot serve
    stops the run here, in one line, before anything is decoded or loaded."""
    # Before hours of hashing and decoding. Ray's workers pick theirs: the driver may have no GPU.
    if options.engine == "local":
        pick_device(options.device)
    else:
        check_device_name(options.device)
    configs = []
    for task in options.tasks:
        spec = options.model_for(task)
        source = resolve_model(spec, options.cache_dir)
        if source.preset is not None and not source.is_local and options.engine == "local":
            hub_access(source, None)  # cached, or the hub answers: else stop now, not after hashing every input
        family = detect_family(source)
        if options.aut_window is not None:
            family.check_windows(options.aut_window)
        cap = options.max_new_tokens or (TINY_RANDOM_MAX_NEW_TOKENS if source.is_tiny_random
                                         else DEFAULT_MAX_NEW_TOKENS[task])
        extra = {"question": options.question} if options.question and task == "reasoning" else {}
        # Only the transcript's prompt depends on the language: other tasks keep their hash when it changes.
        language = options.language if task == "transcript" else None
        configs.append(TaskConfig(name=task, model=spec, language=language, max_new_tokens=cap,
                                  greedy=options.greedy, seed=options.seed, segmentation=options.segmentation_key(),
                                  summary_from=options.summary_from if task == "summary" else "text",
                                  family=family.name, loop_stop_tokens=options.loop_stop_tokens, **extra))
    return configs


def run_corpus(inputs: str | Path | Sequence[str | Path], out: str | Path, options: RunOptions | None = None,
               show_progress: bool = True, listed: Sequence[str] = ()) -> RunSummary:
    """Run every task over every recording, resuming whatever `out` already holds.

    `options`: None is the CLI's defaults (captions by the Captioner). `listed`: more files, as a
    `--files-from` list names them (discover)."""
    inputs, listed = path_list(inputs), path_list(listed)
    options = RunOptions() if options is None else options
    started = time.monotonic()
    store = PartStore(out, rows_per_shard=options.rows_per_shard)
    out = store.out_path
    check_output(store, options.overwrite)
    unread_folders: list[str] = []
    ignored: Counter = Counter()
    sources = discover(inputs, listed, unread_folders, ignored)
    check_found(sources, inputs, unread_folders, ignored)
    if sources:  # before a model loads for minutes
        check_decoding_available()
    configs = task_configs(options)
    wanted = wanted_hashes(configs, options)
    plan = plan_stages(configs, options, wanted.get(SPEAKER_TASK))
    engine = _engine_for(options)
    try:
        engine.open(plan)  # before the lock: a missing diarizer or unreachable cluster stops the run here
        with OutputLock(out):
            if options.overwrite:
                store.clear()
            set_aside = store.set_aside_damaged_parts()
            keys = resume_keys(sources, hashes_file(options.cache_dir), show_progress)
            stored, cuts = store.stored(), known_cuts(store)
            check_cut(stored.states(), set(keys.values()), wanted, cut_of(options), cuts, out)
            done = done_tasks(stored.states(), wanted, include_errors=not options.retry_errors)
            summary = RunSummary(recordings=len(sources), warning_lines=unread_folders + set_aside,
                                 ignored=ignored_line(ignored))
            summary.resumed = sum(1 for s in sources if set(wanted) <= done.get(keys[s.source_path], set()))
            progress = RunProgress(len(sources), len(plan), enabled=show_progress)
            header_seconds = HeaderSeconds()  # read once for all stages, only where groups are sized by audio
            worked: set[str] = set()
            try:
                for stage in plan:
                    works = _pending_works(stage, sources, keys, done, store, wanted, options, header_seconds)
                    worked.update(source.source_path for work in works for source in work.sources)
                    progress.start_stage(stage.label, skipped=len(sources) - sum(len(w.sources) for w in works),
                                         has_work=bool(works))
                    if not works:
                        continue
                    for result in engine.run_stage(stage, works, progress.within_group):
                        store.write_part(rows_to_table(result.rows), _manifest(stage.spec, stage.hashes,
                                                                               result.sources, keys, options))
                        summary.nonsense_model |= result.nonsense
                        progress.advance(recordings=len(result.sources), audio_s=result.audio_s)
                engine.close()
            finally:  # an error's one line then starts on a line of its own, not after the bar
                progress.close()
            run_config = {"options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()
                                      if k != "hf_token"},
                          "inputs": input_roots(inputs, listed),
                          "tasks": {c.name: {"model": c.model, "config_hash": c.config_hash()} for c in configs},
                          "prompt_version": PROMPT_VERSION,
                          "cuts": {**cuts, **{digest: cut_of(options) for digest in wanted.values()}}}
            stored, current_paths = store.stored(), paths_by_key(sources, keys)
            earlier = EarlierRecordings.of(stored, current_paths, prune=options.prune)
            summary.kept = len(earlier.kept)
            summary.warning_lines += earlier.replaced_lines()
            # A dataset that holds audio stays one: a run without --embed-audio (another task, a new model)
            # embeds its new and redone segments too, rather than leave some rows without their audio.
            embed = options.embed_audio or store.has_audio()
            info, written = DatasetInfo(tool_version=__version__, run_config=run_config), set()
            if _already_current(store, info, embed, stored, current_paths, earlier.kept):
                # Left untouched, it is not rewritten for minutes by a cron job's rerun, nor seen as changed by a sync.
                rows = store.final_row_chunks(columns=COUNTED_COLUMNS)
                for _ in _counted(summary, rows, skip=earlier.kept_paths(), written=written):
                    pass
            else:
                chunks = _final_chunks(stored, current_paths, earlier.kept, sources, wanted, embed)
                store.finalize_chunks(_counted(summary, chunks, skip=earlier.kept_paths(), worked=worked,
                                               written=written), info, audio=embed)
            # Every input leaves a row, an error row at worst; one that left none would vanish unseen.
            summary.warning_lines += [f"{s.source_path}: no rows came out of it (a bug: please report it); "
                                      f"the next run tries it again" for s in sources if s.source_path not in written]
    finally:
        engine.close()
    summary.wall_s = time.monotonic() - started
    return summary


def wanted_hashes(configs: list[TaskConfig], options: RunOptions) -> dict[str, str]:
    """Each task's config hash (and the speakers' when diarizing): work stored under another hash is redone."""
    wanted = {c.name: c.config_hash() for c in configs}
    if options.diarize:
        wanted[SPEAKER_TASK] = diarization_hash(options.diarize_model, options.diarize_options,
                                                options.segmentation_key())
    return wanted


def still_to_do(stage: ModelStage | SpeakerStage, sources: list[SourceFile], keys: dict[str, str],
                done: dict[str, set[str]]) -> dict[str, frozenset[str]]:
    """Per source path with work left in `stage`: the stage's tasks not done there yet, and a summary whose
    captions or transcripts this run does again (kept, it would summarise the words they replace)."""
    tasks = set(stage.hashes)
    reads = stage.reads if isinstance(stage, ModelStage) else frozenset()
    todo = {}
    for source in sources:
        finished = done.get(keys[source.source_path], set())
        left = tasks if reads - finished else tasks - finished
        if left:
            todo[source.source_path] = frozenset(left)
    return todo


def _engine_for(options: RunOptions):
    if options.engine == "ray":
        from .ray_engine import RayEngine  # Ray is an optional extra: imported only when asked for

        return RayEngine(options)
    return LocalEngine(options)


def _pending_works(stage: ModelStage | SpeakerStage, sources: list[SourceFile], keys: dict[str, str],
                   done: dict[str, set[str]], store: PartStore, wanted: dict[str, str],
                   options: RunOptions, header_seconds: HeaderSeconds) -> list[GroupWork]:
    """This stage's groups: the recordings where some of its tasks are not done yet."""
    todo = still_to_do(stage, sources, keys, done)
    pending = [s for s in sources if s.source_path in todo]
    texts = {}
    if isinstance(stage, ModelStage) and stage.is_summary:  # the summary reads the rows the other stages wrote
        # Only the recordings this stage will summarise, and of their rows only what a summary reads.
        pending_paths = {keys[s.source_path]: [s.source_path] for s in pending}
        texts = _rows_by_sha([_summary_source(r) for rows in merge_in_chunks(store.stored(), wanted, pending_paths)
                              for r in rows])
    works = []
    if options.group_recordings is None:
        groups = auto_groups(pending, lambda source: header_seconds(source.path),
                             group_audio_s(options.planned_slots(), options.max_chunk_s,
                                           workers=options.ray.workers if options.engine == "ray" else 1))
    else:
        groups = fixed_groups(pending, options.group_recordings)
    for group in groups:
        works.append(GroupWork(sources=group, keys={s.source_path: keys[s.source_path] for s in group},
                               todo={s.source_path: todo[s.source_path] for s in group},
                               texts={keys[s.source_path]: texts[keys[s.source_path]] for s in group
                                      if keys[s.source_path] in texts}))
    return works


def paths_by_key(sources: list[SourceFile], keys: dict[str, str]) -> dict[str, list[str]]:
    """Recording key -> the source paths this run has it under (identical files share a key)."""
    current_paths: dict[str, list[str]] = {}
    for source in sources:
        current_paths.setdefault(keys[source.source_path], []).append(source.source_path)
    return current_paths


def _already_current(store: PartStore, info: DatasetInfo, embed: bool, stored: StoredRows,
                     current_paths: dict[str, list[str]], kept: frozenset[str]) -> bool:
    """The output is what finalizing would write again: no part to merge, the same settings, nothing to drop,
    and every recording under the paths it has now (a moved file is not redone, but its rows move)."""
    return (store.holds_exactly(info, embed) and set(stored.keys()) <= set(current_paths) | kept
            and all(stored.latest_paths(key) == set(paths) for key, paths in current_paths.items()))


def _final_chunks(stored: StoredRows, current_paths: dict[str, list[str]], kept: frozenset[str],
                  sources: list[SourceFile], wanted: dict[str, str], embed: bool) -> Iterator[list[SegmentRow]]:
    """The output rows, merged a chunk of recordings at a time so memory stays flat at any corpus size."""
    files = {s.source_path: s.path for s in sources}
    paths = {**current_paths, **{key: sorted(stored.latest_paths(key)) for key in kept}}
    for rows in merge_in_chunks(stored, wanted, paths, kept=kept):
        # Caption and transcript come from different stages: their agreement is judged once they meet.
        rows = [replace(r, flags=with_agreement_flag(r.flags, r.caption, r.transcript)) if r.status == "ok" else r
                for r in rows]
        yield embed_segment_audio(rows, files) if embed else rows


@dataclass(frozen=True)
class EarlierRecordings:
    """Stored recordings that this run's inputs do not have.

    Kept in the output as their last run left them (a run over one folder
    must not delete what a run over another put there), unless `--prune`;
    but not one whose path a current input now holds with other content:
    that file was replaced, and its old rows are stale.
    """

    stored: StoredRows
    kept: frozenset[str]
    replaced: dict[str, str]  # key -> the path now holding other content

    @classmethod
    def of(cls, stored: StoredRows, current_paths: dict[str, list[str]], prune: bool) -> EarlierRecordings:
        in_use = {path for paths in current_paths.values() for path in paths}
        absent = [key for key in stored.keys() if key not in current_paths]
        taken = {key: stored.latest_paths(key) & in_use for key in absent}
        replaced = {key: min(paths) for key, paths in taken.items() if paths}
        kept, claimed = set(), set()
        # Newest first: of two earlier recordings under one path (a file replaced by a run that never
        # finished), the later one is that path's content.
        for key in sorted((k for k in absent if k not in replaced), key=stored.last_file, reverse=True):
            if not stored.latest_paths(key) & claimed:
                kept.add(key)
                claimed |= stored.latest_paths(key)
        return cls(stored, frozenset() if prune else frozenset(kept), {} if prune else replaced)

    def kept_paths(self) -> set[str]:
        return {path for key in self.kept for path in self.stored.latest_paths(key)}

    def replaced_lines(self) -> list[str]:
        return [f"{path}: its content changed since an earlier run (or another input folder holds a file of "
                f"that name); the earlier rows under this path are replaced by this run's"
                for path in sorted(set(self.replaced.values()))]


def _summary_source(row: SegmentRow) -> SegmentRow:
    return replace(row, audio=None, summary=None, summary_reasoning=None, reasoning=None, answer=None,
                   transcript_raw=None, flags=(), config_hash=None)


def _rows_by_sha(rows: list[SegmentRow]) -> dict[str, list[SegmentRow]]:
    by_sha: dict[str, list[SegmentRow]] = {}
    for row in rows:
        if row.source_sha256:
            by_sha.setdefault(row.source_sha256, []).append(row)
    return by_sha


def _manifest(spec: str, tasks: dict[str, str], group: list[SourceFile], keys: dict[str, str],
              options: RunOptions) -> dict:
    return {"tool_version": __version__, "stage_model": spec, "tasks": tasks, "cut": cut_of(options),
            "recordings": [{"source_path": s.source_path, "key": keys[s.source_path]} for s in group]}


# What `_counted` reads of a row (and SegmentRow needs), where the rows are only counted.
COUNTED_COLUMNS = ("recording_id", "source_path", "source_sha256", "recording_duration_s", "segment_index", "start_s",
                   "end_s", "status", "error", "flags")


def _counted(summary: RunSummary, chunks: Iterator[list[SegmentRow]],
             skip: set[str] = frozenset(), worked: set[str] = frozenset(),
             written: set[str] | None = None) -> Iterator[list[SegmentRow]]:
    """The chunks, unchanged, counted into `summary` on their way to the writer (but rows of `skip` paths:
    recordings of earlier runs, counted as `kept`); `worked`: the paths this run had work for; `written`
    gathers the paths that have rows."""
    seen: dict[str, str] = {}
    warned: set[tuple[str, str]] = set()
    for rows in chunks:
        for row in rows:
            if row.source_path in skip:
                continue
            if row.status == STATUS_ERROR:
                seen[row.source_path] = STATUS_ERROR
                summary.error_lines.append(f"{row.source_path}: {row.error}")
                continue
            if row.source_path not in seen:
                seen[row.source_path] = "partial" if row.error else "ok"
                summary.audio_s += row.recording_duration_s or 0.0
                if row.source_path in worked:
                    summary.run_audio_s += row.recording_duration_s or 0.0
                if row.error:
                    summary.error_lines.append(f"{row.source_path}: {row.error}")
            summary.segments += 1
            summary.flagged_segments += bool(row.flags)
            for flag, line in source_findings(row):
                if (row.source_path, flag) not in warned:  # one line per finding and recording
                    warned.add((row.source_path, flag))
                    summary.warning_lines.append(line)
        yield rows
    if written is not None:
        written.update(seen)
    summary.errors = sum(1 for s in seen.values() if s == STATUS_ERROR)
    summary.partial = sum(1 for s in seen.values() if s == "partial")
    summary.ok = len(seen) - summary.errors - summary.partial
