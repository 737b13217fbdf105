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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omni_caption import __version__
from omni_caption.captioner import (DEFAULT_MAX_NEW_TOKENS, DEFAULT_PRESET, PROMPT_VERSION,
                                    TINY_RANDOM_MAX_NEW_TOKENS, TaskConfig, run_task)
from omni_caption.model import LoadOptions, OmniModel, load_model, resolve_model
from omni_caption.schemas import (STATUS_ERROR, DatasetInfo, ModelIds, PartStore, Scores, SegmentRow,
                                  read_dataset, recording_id_from_sha256, rows_to_table)

from .chunking import TimeSpan, even_chunks
from .decode import DecodedAudio, DecodeError, decode_audio
from .discover import SourceFile, discover
from .progress import RunProgress


class OutputPathError(OSError):
    pass


@dataclass(frozen=True)
class RunOptions:
    tasks: tuple[str, ...] = ("caption",)
    model: str | None = None  # one model for every task
    task_models: dict[str, str] = field(default_factory=dict)  # per-task override
    language: str | None = None
    max_chunk_s: float = 30.0
    batch_size: int = 8
    max_new_tokens: int | None = None
    greedy: bool = False
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    cache_dir: Path | None = None
    group_recordings: int = 16  # recordings per committed part

    def model_for(self, task: str) -> str:
        return self.task_models.get(task) or self.model or DEFAULT_PRESET[task]


@dataclass
class RunSummary:
    recordings: int = 0
    ok: int = 0
    errors: int = 0
    segments: int = 0
    flagged_segments: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0
    error_lines: list[str] = field(default_factory=list)
    nonsense_model: bool = False

    @property
    def realtime_factor(self) -> float:
        return self.audio_s / self.wall_s if self.wall_s > 0 else 0.0


@dataclass
class _Recording:
    source: SourceFile
    sha256: str
    audio: DecodedAudio
    spans: list[TimeSpan]


def check_output_path(out: Path) -> None:
    if out.exists() and out.is_dir():
        raise OutputPathError(f"--out {out} is a folder; give a .parquet file path")
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
    configs = []
    for task in options.tasks:
        spec = options.model_for(task)
        is_tiny = resolve_model(spec, options.cache_dir).is_tiny_random
        cap = options.max_new_tokens or (TINY_RANDOM_MAX_NEW_TOKENS if is_tiny else DEFAULT_MAX_NEW_TOKENS[task])
        configs.append(TaskConfig(name=task, model=spec, language=options.language, max_new_tokens=cap,
                                  greedy=options.greedy, seed=options.seed))
    return configs


def stages(configs: list[TaskConfig]) -> list[tuple[str, list[TaskConfig]]]:
    """Group tasks by model, in first-use order: each model is loaded once."""
    by_model: dict[str, list[TaskConfig]] = {}
    for config in configs:
        by_model.setdefault(config.model, []).append(config)
    return list(by_model.items())


def run_corpus(inputs: list[str | Path], out: str | Path, options: RunOptions,
               show_progress: bool = True) -> RunSummary:
    started = time.monotonic()
    out = Path(out)
    check_output_path(out)
    sources = discover(inputs)
    configs = task_configs(options)
    store = PartStore(out)
    summary = RunSummary(recordings=len(sources))
    plan = stages(configs)
    progress = RunProgress(total=len(sources) * len(plan), enabled=show_progress)
    for spec, stage_configs in plan:
        omni = load_model(spec, LoadOptions(device=options.device, dtype=options.dtype, cache_dir=options.cache_dir))
        summary.nonsense_model |= omni.is_nonsense
        progress.set_stage(f"{'+'.join(c.name for c in stage_configs)} [{spec}]")
        for start in range(0, len(sources), options.group_recordings):
            group = sources[start:start + options.group_recordings]
            rows = _run_group(omni, stage_configs, group, options, progress)
            store.write_part(rows_to_table(rows))
        _release(omni)
    run_config = {"options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
                  "tasks": {c.name: {"model": c.model, "config_hash": c.config_hash()} for c in configs},
                  "prompt_version": PROMPT_VERSION}
    store.compact(DatasetInfo(tool_version=__version__, run_config=run_config))
    progress.close()
    _fill_summary(summary, out)
    summary.wall_s = time.monotonic() - started
    return summary


def _release(omni: OmniModel) -> None:
    """Free the model before the next one loads: two 30B models do not fit one GPU."""
    import gc

    import torch

    omni.model = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _prepare(source: SourceFile, max_chunk_s: float) -> _Recording | SegmentRow:
    try:
        sha256 = source.sha256()
    except OSError as exc:
        return SegmentRow.error_row(source.source_path, f"cannot read file: {exc.strerror or exc}")
    try:
        audio = decode_audio(source.path)
    except (DecodeError, OSError) as exc:
        return SegmentRow.error_row(source.source_path, str(exc), sha256=sha256)
    return _Recording(source, sha256, audio, even_chunks(audio.duration_s, max_chunk_s))


def _run_group(omni: OmniModel, configs: list[TaskConfig], group: list[SourceFile], options: RunOptions,
               progress: RunProgress) -> list[SegmentRow]:
    prepared = [_prepare(source, options.max_chunk_s) for source in group]
    recordings = [p for p in prepared if isinstance(p, _Recording)]
    rows: list[SegmentRow] = [p for p in prepared if isinstance(p, SegmentRow)]
    segments = [(rec, index, span) for rec in recordings for index, span in enumerate(rec.spans)]
    # Similar lengths share a batch, so little compute goes to padding.
    order = sorted(range(len(segments)), key=lambda i: segments[i][2].duration_s)
    outputs: dict[int, list] = {i: [] for i in range(len(segments))}
    for config in configs:
        for b in range(0, len(order), options.batch_size):
            batch = order[b:b + options.batch_size]
            audios = [segments[i][0].audio.slice(segments[i][2].start_s, segments[i][2].end_s) for i in batch]
            for i, result in zip(batch, run_task(omni, config, audios)):
                outputs[i].append((config, result))
    for i, (rec, index, span) in enumerate(segments):
        rows.append(_segment_row(omni, rec, index, span, outputs[i]))
    progress.advance(recordings=len(group), audio_s=sum(r.audio.duration_s for r in recordings))
    return rows


def _segment_row(omni: OmniModel, rec: _Recording, index: int, span: TimeSpan, results: list) -> SegmentRow:
    columns: dict = {}
    scores: dict = {}
    flags: list[str] = []
    models: dict = {}
    hashes = []
    for config, output in results:
        columns.update(output.columns)
        scores.update({k: v for k, v in output.scores.items() if k in Scores.__dataclass_fields__})
        flags.extend(output.flags)
        models[config.name] = omni.model_label
        hashes.append(f"{config.name}={config.config_hash()}")
    return SegmentRow(
        recording_id=recording_id_from_sha256(rec.sha256),
        source_path=rec.source.source_path,
        source_sha256=rec.sha256,
        recording_duration_s=rec.audio.duration_s,
        segment_index=index,
        start_s=span.start_s,
        end_s=span.end_s,
        flags=tuple(sorted(set(flags))),
        scores=Scores(**scores),
        models=ModelIds(**models),
        prompt_version=PROMPT_VERSION,
        config_hash=",".join(sorted(hashes)),
        **columns,
    )


def _fill_summary(summary: RunSummary, out: Path) -> None:
    table, _ = read_dataset(out)
    seen: dict[str, str] = {}
    for row in table.select(["source_path", "status", "error", "flags", "recording_duration_s"]).to_pylist():
        if row["status"] == STATUS_ERROR:
            seen[row["source_path"]] = STATUS_ERROR
            summary.error_lines.append(f"{row['source_path']}: {row['error']}")
            continue
        if row["source_path"] not in seen:
            seen[row["source_path"]] = "ok"
            summary.audio_s += row["recording_duration_s"] or 0.0
        summary.segments += 1
        summary.flagged_segments += bool(row["flags"])
    summary.errors = sum(1 for s in seen.values() if s == STATUS_ERROR)
    summary.ok = len(seen) - summary.errors
