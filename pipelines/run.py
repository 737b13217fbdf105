"""The main job: folder(s) of recordings -> one Parquet file.

Stage by stage, like WhisperX: one model is loaded at a time (a 30B model
fills an 80 GB GPU) and runs its tasks over every recording, writing an atomic
part per group of recordings as it goes. The parts are merged into the final
file at the end, so a crash never loses a finished group.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from omni_caption import __version__
from omni_caption.captioner import (DEFAULT_MAX_NEW_TOKENS, DEFAULT_PRESET, PROMPT_VERSION,
                                    TINY_RANDOM_MAX_NEW_TOKENS, SegmentContext, TaskConfig, model_generate_fn,
                                    run_guarded_task, with_agreement_flag)
from omni_caption.model import LoadOptions, OmniModel, load_model, resolve_model
from omni_caption.model.decode_runtime import DecodeRuntime
from omni_caption.model.families import detect_family
from omni_caption.schemas import (STATUS_ERROR, DatasetInfo, ModelIds, PartStore, Scores, SegmentRow, done_tasks,
                                  format_config_hash, merge_rows, rows_to_table)

from .decode import DecodeError
from .diarize import DEFAULT_PIPELINE, DiarizeOptions, Diarizer
from .discover import SourceFile, discover
from .embed_audio import embed_segment_audio
from .output_lock import OutputLock
from .progress import RunProgress
from .segmenter import Recording, Segmenter, aut_windows_for
from .speakers import SPEAKER_TASK, diarization_hash, speaker_rows
from .stage_runtime import stage_runtime
from .summarise import summary_rows


class OutputPathError(OSError):
    pass


@dataclass(frozen=True)
class RunOptions:
    tasks: tuple[str, ...] = ("caption",)
    model: str | None = None  # one model for every task
    task_models: dict[str, str] = field(default_factory=dict)  # per-task override
    language: str | None = None
    max_chunk_s: float = 30.0
    granularity: str = "chunk"  # chunk: <= 30 s chunks; utterance: 1-8 s windows (+ long non-speech)
    summary_from: str = "text"  # text: the segments' captions/transcripts; audio: the recording itself
    question: str | None = None  # reasoning: the question asked of every segment
    diarize: bool = False
    diarize_model: str | None = None  # pyannote pipeline: local folder or hub id (default community-1)
    diarize_options: DiarizeOptions = field(default_factory=DiarizeOptions)
    hf_token: str | None = field(default=None, repr=False)  # for gated hub pipelines; never stored
    embed_audio: bool = False  # segment audio as FLAC bytes in `audio` (Hugging Face Audio layout)
    aut_window: int | str | None = None  # None: the model's own (8 s); 1..8 seconds; "pause"
    batch_size: int | str = 8  # or "auto": sized from free GPU memory after the model loads
    decoder: str = "auto"  # auto (static engine on CUDA, generate on CPU) | plain | static
    max_new_tokens: int | None = None
    greedy: bool = False
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    cache_dir: Path | None = None
    group_recordings: int = 16  # recordings per committed part
    overwrite: bool = False  # start fresh instead of resuming
    retry_errors: bool = False  # redo recordings whose last attempt failed
    rows_per_shard: int = 1_000_000  # with a folder --out

    def vad_device(self) -> str:
        """VAD runs on the GPU when generation does; the frames are tiny next to the model."""
        return "cuda" if self.device.startswith("cuda") or (self.device == "auto" and _cuda_available()) else "cpu"

    def segmentation_key(self) -> str:
        return f"granularity={self.granularity};max_chunk_s={self.max_chunk_s};aut_window={self.aut_window}"

    def model_for(self, task: str) -> str:
        return self.task_models.get(task) or self.model or DEFAULT_PRESET[task]


@dataclass
class RunSummary:
    recordings: int = 0
    ok: int = 0
    errors: int = 0
    segments: int = 0
    flagged_segments: int = 0
    resumed: int = 0  # recordings whose results were already in the output
    audio_s: float = 0.0
    wall_s: float = 0.0
    error_lines: list[str] = field(default_factory=list)
    nonsense_model: bool = False

    @property
    def realtime_factor(self) -> float:
        return self.audio_s / self.wall_s if self.wall_s > 0 else 0.0


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def check_output_path(out: Path, sharded: bool) -> None:
    if out.exists() and out.is_dir() and not sharded:
        raise OutputPathError(f"--out {out} is a folder; end it with / for a sharded dataset, or give a .parquet path")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputPathError(f"--out {out}: folder {parent} does not exist")
    try:  # really try: permission bits say nothing for root, read-only mounts, or full disks
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(f"--out {out}: folder {parent} is not writable ({exc.strerror})") from exc


def task_configs(options: RunOptions) -> list[TaskConfig]:
    """One config per task, each knowing its model's family; a task or option the family cannot serve
    stops the run here, in one line, before anything is decoded or loaded."""
    configs = []
    for task in options.tasks:
        spec = options.model_for(task)
        source = resolve_model(spec, options.cache_dir)
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
                                  family=family.name, **extra))
    return configs


def stages(configs: list[TaskConfig]) -> list[tuple[str, list[TaskConfig]]]:
    """Group segment tasks by model, in first-use order (each model loads once); the summary comes last,
    since it reads what the other stages wrote."""
    by_model: dict[str, list[TaskConfig]] = {}
    for config in configs:
        if config.name != "summary":
            by_model.setdefault(config.model, []).append(config)
    plan = list(by_model.items())
    plan += [(c.model, [c]) for c in configs if c.name == "summary"]
    return plan


def run_corpus(inputs: list[str | Path], out: str | Path, options: RunOptions,
               show_progress: bool = True) -> RunSummary:
    """Run every task over every recording, resuming whatever `out` already holds."""
    started = time.monotonic()
    store = PartStore(out, rows_per_shard=options.rows_per_shard)
    out = store.out_path
    check_output_path(out, store.sharded)
    sources = discover(inputs)
    configs = task_configs(options)
    wanted = {c.name: c.config_hash() for c in configs}
    diarizer = None
    if options.diarize:  # load first: an unavailable pipeline stops the run before any model loads
        diarizer = Diarizer(options.diarize_model or DEFAULT_PIPELINE, token=options.hf_token,
                            device=options.vad_device(), options=options.diarize_options)
        wanted[SPEAKER_TASK] = diarization_hash(options.diarize_model, options.diarize_options,
                                                options.segmentation_key())
    with OutputLock(out):
        if options.overwrite:
            store.clear()
        segmenter = Segmenter(options)
        keys = {source.source_path: _key_of(source) for source in sources}
        done = done_tasks(store.existing_rows(), wanted, include_errors=not options.retry_errors)
        summary = RunSummary(recordings=len(sources))
        summary.resumed = sum(1 for s in sources if set(wanted) <= done.get(keys[s.source_path], set()))
        plan = stages(configs)
        progress = RunProgress(total=len(sources) * (len(plan) + bool(diarizer)), enabled=show_progress)
        if diarizer is not None:
            _diarize_stage(diarizer, sources, keys, done, wanted[SPEAKER_TASK], segmenter, store, options, progress)
        omni = None
        for spec, stage_configs in plan:
            pending = [s for s in sources
                       if any(c.name not in done.get(keys[s.source_path], set()) for c in stage_configs)]
            progress.skip(len(sources) - len(pending))
            if not pending:
                continue
            if omni is None or omni.source.spec != spec:  # the summary often reuses the last stage's model
                if omni is not None:
                    _release(omni)
                omni = load_model(spec, LoadOptions(device=options.device, dtype=options.dtype,
                                                    cache_dir=options.cache_dir))
            summary.nonsense_model |= omni.is_nonsense
            runtime = stage_runtime(omni, stage_configs, options)
            progress.set_stage(f"{'+'.join(c.name for c in stage_configs)} [{spec}]")
            groups = [pending[i:i + options.group_recordings]
                      for i in range(0, len(pending), options.group_recordings)]
            is_summary = stage_configs[0].name == "summary"
            texts = _rows_by_sha(merge_rows(store.existing_rows(), wanted)) if is_summary else {}
            for group, prepared in segmenter.prefetched(groups, keys):
                if is_summary:
                    rows = _summary_group(omni, stage_configs[0], prepared, texts, options, progress,
                                          runtime.limit.size)
                else:
                    todo = {s.source_path: {c.name for c in stage_configs}
                            - done.get(keys[s.source_path], set()) for s in group}
                    rows = _run_group(omni, stage_configs, prepared, todo, options, progress, runtime)
                store.write_part(rows_to_table(rows),
                                 _manifest(spec, {c.name: c.config_hash() for c in stage_configs}, group, keys))
        if omni is not None:
            _release(omni)
        progress.close()
        current_paths: dict[str, list[str]] = {}
        for source in sources:
            current_paths.setdefault(keys[source.source_path], []).append(source.source_path)
        rows = merge_rows(store.existing_rows(), wanted, current_paths)
        # Caption and transcript come from different stages: their agreement is judged once they meet.
        rows = [replace(r, flags=with_agreement_flag(r.flags, r.caption, r.transcript)) if r.status == "ok" else r
                for r in rows]
        if options.embed_audio:
            rows = embed_segment_audio(rows, {s.source_path: s.path for s in sources})
        run_config = {"options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()
                                  if k != "hf_token"},
                      "inputs": [str(Path(p).resolve()) for p in inputs],
                      "tasks": {c.name: {"model": c.model, "config_hash": c.config_hash()} for c in configs},
                      "prompt_version": PROMPT_VERSION}
        store.finalize(rows, DatasetInfo(tool_version=__version__, run_config=run_config))
    _fill_summary(summary, rows)
    summary.wall_s = time.monotonic() - started
    return summary


def _diarize_stage(diarizer, sources, keys, done, config_hash, segmenter, store, options, progress) -> None:
    pending = [s for s in sources if SPEAKER_TASK not in done.get(keys[s.source_path], set())]
    progress.skip(len(sources) - len(pending))
    progress.set_stage(f"speakers [{diarizer.spec}]")
    hashes = format_config_hash({SPEAKER_TASK: config_hash})
    groups = [pending[i:i + options.group_recordings] for i in range(0, len(pending), options.group_recordings)]
    for group, prepared in segmenter.prefetched(groups, keys):
        store.write_part(rows_to_table(speaker_rows(diarizer, prepared, hashes, PROMPT_VERSION)),
                         _manifest(diarizer.spec, {SPEAKER_TASK: config_hash}, group, keys))
        progress.advance(recordings=len(prepared), audio_s=sum(p.duration_s for p in prepared
                                                               if isinstance(p, Recording)))


def _rows_by_sha(rows: list[SegmentRow]) -> dict[str, list[SegmentRow]]:
    by_sha: dict[str, list[SegmentRow]] = {}
    for row in rows:
        if row.source_sha256:
            by_sha.setdefault(row.source_sha256, []).append(row)
    return by_sha


def _summary_group(omni: OmniModel, config: TaskConfig, prepared: list, texts: dict, options: RunOptions,
                   progress: RunProgress, batch_size: int) -> list[SegmentRow]:
    stage_hash = format_config_hash({config.name: config.config_hash()})
    recordings = [p for p in prepared if isinstance(p, Recording)]
    rows = [replace(p, config_hash=stage_hash) for p in prepared if isinstance(p, SegmentRow)]
    rows += summary_rows(omni, config, recordings, texts, batch_size, config.prompt_version)
    progress.advance(recordings=len(prepared), audio_s=sum(r.duration_s for r in recordings))
    return rows


def _key_of(source: SourceFile) -> str:
    """The resume key: the file's sha256 (a moved file is the same recording), or its path if unreadable."""
    try:
        return source.sha256()
    except OSError:
        return f"path:{source.source_path}"


def _manifest(spec: str, tasks: dict[str, str], group: list[SourceFile], keys: dict[str, str]) -> dict:
    return {"tool_version": __version__, "stage_model": spec, "tasks": tasks,
            "recordings": [{"source_path": s.source_path, "key": keys[s.source_path]} for s in group]}


def _release(omni: OmniModel) -> None:
    """Free the model before the next one loads: two 30B models do not fit one GPU."""
    import gc

    import torch

    omni.model = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _run_group(omni: OmniModel, configs: list[TaskConfig], prepared: list[Recording | SegmentRow],
               todo: dict[str, set[str]], options: RunOptions, progress: RunProgress,
               runtime: DecodeRuntime) -> list[SegmentRow]:
    """Run this stage's tasks over a group; `todo`: per source path, the tasks still to do there."""
    stage_hash = format_config_hash({c.name: c.config_hash() for c in configs})
    recordings = [p for p in prepared if isinstance(p, Recording)]
    # Error rows carry the stage's hashes: the failure is this stage's result for that recording.
    rows: list[SegmentRow] = [replace(p, config_hash=stage_hash) for p in prepared if isinstance(p, SegmentRow)]
    segments = [(rec, index, seg) for rec in recordings for index, seg in enumerate(rec.segments)]
    # Similar lengths share a batch, so little compute goes to padding.
    order = sorted(range(len(segments)), key=lambda i: segments[i][2].span.duration_s)
    outputs: dict[int, list] = {i: [] for i in range(len(segments))}
    start = 0
    while start < len(order):
        batch = order[start:start + runtime.limit.size]  # an OOM lowers the limit for the batches after it
        start += len(batch)
        try:
            audios = [segments[i][0].read(segments[i][2]) for i in batch]
        except DecodeError as exc:  # a file that breaks mid-way: its recording becomes an error row
            failed = {segments[i][0].source.source_path: segments[i][0] for i in batch}
            rows += [replace(r, config_hash=stage_hash) for r in _fail_recordings(failed.values(), exc)]
            continue
        for config in configs:
            # A task already done for a recording (only another task's options changed) is not redone.
            chosen = [k for k, i in enumerate(batch) if config.name in todo[segments[i][0].source.source_path]]
            if not chosen:
                continue
            picked = [batch[k] for k in chosen]
            windows = aut_windows_for(options, [segments[i][2] for i in picked])
            contexts = [SegmentContext(duration_s=segments[i][2].span.duration_s,
                                       speech_ratio=segments[i][2].speech_ratio, language=config.language)
                        for i in picked]
            generate = model_generate_fn(omni, config.prompt(), [audios[k] for k in chosen], windows, runtime)
            for i, output in zip(picked, run_guarded_task(generate, config, contexts)):
                outputs[i].append((config, output))
    failed_paths = {r.source_path for r in rows}
    for i, (rec, index, segment) in enumerate(segments):
        if rec.source.source_path not in failed_paths and outputs[i]:
            rows.append(_segment_row(omni, rec, index, outputs[i]))
    progress.advance(recordings=len(prepared), audio_s=sum(r.duration_s for r in recordings))
    return rows


def _fail_recordings(recordings, exc: Exception) -> list[SegmentRow]:
    return [SegmentRow.error_row(r.source.source_path, f"decoding failed mid-file: {exc}", sha256=r.sha256)
            for r in recordings]


def _segment_row(omni: OmniModel, rec: Recording, index: int, results: list) -> SegmentRow:
    columns: dict = {}
    scores: dict = {}
    flags: list[str] = []
    models: dict = {}
    hashes: dict[str, str] = {}
    prompt_version = PROMPT_VERSION
    for config, output in results:
        prompt_version = config.prompt_version  # one stage, one model: every config shares its family
        columns.update(output.columns)
        if "transcript" in output.raw:
            columns["transcript_raw"] = output.raw["transcript"]
        scores.update({k: v for k, v in output.scores.items() if k in Scores.__dataclass_fields__})
        flags.extend(output.flags)
        models[config.name] = omni.model_label
        hashes[config.name] = config.config_hash()
    return rec.segment_row(
        index,
        flags=tuple(sorted(set(flags))),
        scores=Scores(**scores),
        models=ModelIds(**models),
        prompt_version=prompt_version,
        config_hash=format_config_hash(hashes),
        **columns,
    )


def _fill_summary(summary: RunSummary, rows: list[SegmentRow]) -> None:
    seen: dict[str, str] = {}
    for row in rows:
        if row.status == STATUS_ERROR:
            seen[row.source_path] = STATUS_ERROR
            summary.error_lines.append(f"{row.source_path}: {row.error}")
            continue
        if row.source_path not in seen:
            seen[row.source_path] = "ok"
            summary.audio_s += row.recording_duration_s or 0.0
        summary.segments += 1
        summary.flagged_segments += bool(row.flags)
    summary.errors = sum(1 for s in seen.values() if s == STATUS_ERROR)
    summary.ok = len(seen) - summary.errors
