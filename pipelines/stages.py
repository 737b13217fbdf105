"""The stages of a run as plain functions: (loaded model, group of recordings) -> the rows of one part.

Both engines call exactly these: the local engine in its own process
(pipelines/local_engine.py), the Ray engine inside actors
(pipelines/ray_engine.py). A stage is a small picklable description (which
model, which tasks, the run's options): `load()` builds its model once per
process and `run_group` turns one segmented group into rows. Writing parts
stays with the driver (pipelines/run.py), so a worker never writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from omni_caption.captioner import PROMPT_VERSION, SegmentContext, TaskConfig, model_generate_fn, run_guarded_task
from omni_caption.model import LoadOptions, OmniModel, default_cache_dir, load_model
from omni_caption.model.batch_sizing import chunks_within, is_out_of_memory
from omni_caption.model.decode_runtime import DecodeRuntime
from omni_caption.model.generation import prepare_rows
from omni_caption.schemas import SegmentRow, format_config_hash

from .ahead import one_ahead
from .decode import DecodeError
from .diarize import DEFAULT_PIPELINE, Diarizer, resolve_pipeline
from .diarize_tiny import TINY_DIARIZATION, tiny_diarization_dir
from .discover import SourceFile
from .options import RunOptions
from .progress import PartialProgress
from .segmenter import Recording, Segmenter, aut_windows_for
from .speakers import SPEAKER_TASK, speaker_rows
from .stage_rows import fail_recordings, is_digital_silence, segment_row, silent_row
from .stage_runtime import stage_runtime
from .summarise import summary_rows

Prepared = Recording | SegmentRow  # a segmented recording, or the error row of one that could not be read


@dataclass(frozen=True)
class GroupWork:
    """One group of recordings for one stage; its rows become exactly one part."""

    sources: tuple[SourceFile, ...]
    keys: dict[str, str]  # source path -> resume key (sha256, or "path:..." when the file is unreadable)
    todo: dict[str, frozenset[str]] = field(default_factory=dict)  # source path -> tasks still to do there
    texts: dict[str, list[SegmentRow]] = field(default_factory=dict)  # sha256 -> merged rows (text summaries)
    prepared: tuple[Prepared, ...] | None = None  # decode + VAD + segments, once done
    first_batch: _TokenisedBatch | None = None  # its first model batch, tokenised ahead (local engine)

    def release_audio(self) -> None:
        """Remove the recordings' decoded-audio files: the stage is done with this group."""
        for prepared in self.prepared or ():
            if isinstance(prepared, Recording):
                prepared.release_audio()


@dataclass(frozen=True)
class GroupResult:
    sources: tuple[SourceFile, ...]
    rows: list[SegmentRow]
    audio_s: float  # for progress: seconds of audio this group covered
    nonsense: bool  # the rows come from tiny-random


def segment_group(segmenter: Segmenter, work: GroupWork) -> GroupWork:
    """Decode + VAD + segmentation of every recording in the group (the CPU half of a stage)."""
    if work.prepared is not None:
        return work
    keys = work.keys
    return replace(work, prepared=tuple(segmenter.prepare_all(
        [(s, None if keys[s.source_path].startswith("path:") else keys[s.source_path]) for s in work.sources])))


def run_group(stage: "ModelStage | SpeakerStage", loaded, work: GroupWork,
              on_progress: PartialProgress | None = None) -> GroupResult:
    """The model half of a stage over one segmented group; `on_progress` hears how far it has got."""
    recordings = [p for p in work.prepared if isinstance(p, Recording)]
    return GroupResult(sources=work.sources, rows=stage.rows(loaded, work, on_progress),
                       audio_s=sum(r.duration_s for r in recordings), nonsense=stage.is_nonsense(loaded))


@dataclass
class LoadedModel:
    """A stage's model once loaded in a process, with how it decodes there (decoder, live batch size)."""

    omni: OmniModel
    runtime: DecodeRuntime


SUMMARISED_TASKS = frozenset({"caption", "transcript"})  # captioner/summary.py's timestamped lines


@dataclass(frozen=True)
class ModelStage:
    """One Qwen3-Omni model and the tasks it runs (or the recording summary, which reads the others' rows)."""

    spec: str
    configs: tuple[TaskConfig, ...]
    options: RunOptions

    @property
    def is_summary(self) -> bool:
        return self.configs[0].name == "summary"

    @property
    def label(self) -> str:
        return f"{'+'.join(c.name for c in self.configs)} [{self.spec}]"

    @property
    def reads(self) -> frozenset[str]:
        """The run's tasks whose text this stage summarises (a summary from text reads captions and
        transcripts): where the run does one of them again, the summary of it is done again too."""
        if not self.is_summary or self.configs[0].summary_from != "text":
            return frozenset()
        return frozenset(self.options.tasks) & SUMMARISED_TASKS

    @property
    def hashes(self) -> dict[str, str]:
        return {c.name: c.config_hash() for c in self.configs}

    @property
    def load_key(self) -> tuple[str, str]:
        return ("omni", self.spec)

    def load(self) -> LoadedModel:
        omni = load_model(self.spec, LoadOptions(device=self.options.device, dtype=self.options.dtype,
                                                 cache_dir=self.options.cache_dir))
        return LoadedModel(omni, stage_runtime(omni, list(self.configs), self.options))

    def is_nonsense(self, loaded: LoadedModel) -> bool:
        return loaded.omni.is_nonsense

    def rows(self, loaded: LoadedModel, work: GroupWork,
             on_progress: PartialProgress | None = None) -> list[SegmentRow]:
        if self.is_summary:
            return summary_group_rows(loaded.omni, self.configs[0], work.prepared, work.texts, loaded.runtime,
                                      on_progress)
        return model_group_rows(loaded.omni, self.configs, work.prepared, work.todo, self.options, loaded.runtime,
                                first=work.first_batch, on_progress=on_progress)

    def prefetch(self, loaded: LoadedModel, work: GroupWork) -> GroupWork:
        """`work` with its first batch read and tokenised: the local engine calls this in its segmenter thread,
        so a group's first batch is ready when the model is done with the group before."""
        if self.is_summary or work.prepared is None:
            return work
        segments = _segments_of(work.prepared)
        first = next(chunks_within(_by_duration(segments), lambda: loaded.runtime.segments_per_call), None)
        if first is None:
            return work
        return replace(work, first_batch=_tokenise(loaded.omni, self.configs, segments, work.todo, first))

    def release(self, loaded: LoadedModel) -> None:
        """Free the model before the next one loads: two 30B models do not fit one GPU."""
        import gc

        import torch

        loaded.runtime.free_after_oom()  # drops the engine's static caches too
        loaded.omni.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


@dataclass(frozen=True)
class SpeakerStage:
    """pyannote diarization: who speaks in each segment, resumable like a task (`speaker=<hash>`)."""

    options: RunOptions
    config_hash: str

    @property
    def spec(self) -> str:
        return self.options.diarize_model or DEFAULT_PIPELINE

    @property
    def label(self) -> str:
        return f"speakers [{self.spec}]"

    @property
    def hashes(self) -> dict[str, str]:
        return {SPEAKER_TASK: self.config_hash}

    @property
    def load_key(self) -> tuple[str, str]:
        return ("speaker", self.spec)

    def check_available(self) -> None:
        """DiarizationUnavailable unless the pipeline is at hand (a folder, cached, or on the hub), loading
        nothing: the dry run's check. tiny-random is built when loaded."""
        if self.spec != TINY_DIARIZATION:
            resolve_pipeline(self.spec, token=self.options.hf_token)

    def load(self) -> Diarizer:
        location = self.spec
        if self.spec == TINY_DIARIZATION:  # the offline demo's: built locally, beside tiny-random
            location = tiny_diarization_dir(self.options.cache_dir or default_cache_dir())
        return Diarizer(location, token=self.options.hf_token, device=self.options.vad_device(),
                        options=self.options.diarize_options)

    def is_nonsense(self, diarizer: Diarizer) -> bool:
        return self.spec == TINY_DIARIZATION

    def rows(self, diarizer: Diarizer, work: GroupWork,
             on_progress: PartialProgress | None = None) -> list[SegmentRow]:
        return speaker_rows(diarizer, list(work.prepared), format_config_hash(self.hashes), PROMPT_VERSION,
                            on_progress)

    def prefetch(self, diarizer: Diarizer, work: GroupWork) -> GroupWork:
        return work

    def release(self, diarizer: Diarizer) -> None:
        pass


def plan_stages(configs: list[TaskConfig], options: RunOptions,
                speaker_hash: str | None = None) -> list[ModelStage | SpeakerStage]:
    """Diarization first; then segment tasks grouped by model, in first-use order (each model loads once);
    the summary last, since it reads what the other stages wrote."""
    by_model: dict[str, list[TaskConfig]] = {}
    for config in configs:
        if config.name != "summary":
            by_model.setdefault(config.model, []).append(config)
    plan: list[ModelStage | SpeakerStage] = [SpeakerStage(options, speaker_hash)] if speaker_hash else []
    plan += [ModelStage(spec, tuple(group), options) for spec, group in by_model.items()]
    plan += [ModelStage(c.model, (c,), options) for c in configs if c.name == "summary"]
    return plan


def summary_group_rows(omni: OmniModel, config: TaskConfig, prepared, texts: dict, runtime: DecodeRuntime,
                       on_progress: PartialProgress | None = None) -> list[SegmentRow]:
    stage_hash = format_config_hash({config.name: config.config_hash()})
    recordings = [p for p in prepared if isinstance(p, Recording)]
    rows = [replace(p, config_hash=stage_hash) for p in prepared if isinstance(p, SegmentRow)]
    return rows + summary_rows(omni, config, recordings, texts, runtime, config.prompt_version, on_progress)


def model_group_rows(omni: OmniModel, configs, prepared, todo: dict[str, frozenset[str]],
                     options: RunOptions, runtime: DecodeRuntime,
                     first: _TokenisedBatch | None = None,
                     on_progress: PartialProgress | None = None) -> list[SegmentRow]:
    """Run a stage's tasks over a group; `todo`: per source path, the tasks still to do there; `on_progress`
    hears after each batch how much of the group's audio is done.

    The next batch's audio is read and tokenised (log-mel features) in a worker thread while the model
    decodes this one, so the GPU does not wait on the CPU between batches; `first`, the first batch
    tokenised ahead (ModelStage.prefetch), is used as it is if the batches still start with it.
    """
    stage_hash = format_config_hash({c.name: c.config_hash() for c in configs})
    # Error rows carry the stage's hashes: the failure is this stage's result for that recording.
    rows: list[SegmentRow] = [replace(p, config_hash=stage_hash) for p in prepared if isinstance(p, SegmentRow)]
    segments = _segments_of(prepared)

    def tokenised(batch: list[int]) -> _TokenisedBatch:
        if first is not None and batch == first.batch:
            return first
        return _tokenise(omni, configs, segments, todo, batch)

    outputs: dict[int, list] = {i: [] for i in range(len(segments))}
    # source path -> why it failed: a segment that could not be read, tokenised, or fit in GPU memory alone
    failures: dict[str, tuple[Recording, str]] = {}
    # An OOM lowers the limit for the batches that follow.
    batches = chunks_within(_by_duration(segments), lambda: runtime.segments_per_call)
    silent = {i for i, (_, _, segment) in enumerate(segments) if is_digital_silence(segment)}  # never batched
    audio_s = sum(segment.span.duration_s for _, _, segment in segments)
    audio_done_s = sum(segments[i][2].span.duration_s for i in silent)
    for ready in one_ahead(batches, tokenised, "tokeniser"):
        for i, why in ready.failed.items():
            failures.setdefault(segments[i][0].source.source_path, (segments[i][0], why))
        for config in configs:
            if config.name not in ready.by_task:
                continue
            picked, task_rows = ready.by_task[config.name]
            for i, output in zip(picked, _guarded_outputs(omni, config, picked, task_rows, segments, options,
                                                          runtime)):
                rec, _, segment = segments[i]
                if isinstance(output, BaseException):
                    failures.setdefault(rec.source.source_path, (rec, (
                        f"CUDA out of memory on a {segment.span.duration_s:.1f} s segment even alone; "
                        "rerun with a smaller --max-chunk-s and --retry-errors")))
                else:
                    outputs[i].append((config, output))
        audio_done_s += sum(segments[i][2].span.duration_s for i in ready.batch)
        if on_progress is not None and audio_s > 0:
            on_progress(len(prepared) * audio_done_s / audio_s, audio_done_s)
    for rec, why in failures.values():
        rows += fail_recordings([rec], why, stage_hash)
    failed_paths = {r.source_path for r in rows}
    for i, (rec, index, segment) in enumerate(segments):
        if rec.source.source_path in failed_paths:
            continue
        if i in silent:
            rows.append(silent_row(rec, index, configs, todo[rec.source.source_path]))
        elif outputs[i]:
            rows.append(segment_row(omni, rec, index, outputs[i]))
    return rows


def _guarded_outputs(omni: OmniModel, config: TaskConfig, picked: list[int], task_rows: list, segments,
                     options: RunOptions, runtime: DecodeRuntime) -> list:
    """The task's outputs for the picked segments, in order.

    Batches that run out of GPU memory are halved (model_generate_fn). A segment that does not fit even
    alone gets its error in place of an output: the batch's other segments are then run one by one, so
    one oversized segment costs its recording, never the run or its neighbours.
    """
    windows = aut_windows_for(options, [segments[i][2] for i in picked])
    contexts = [SegmentContext(duration_s=segments[i][2].span.duration_s, speech_ratio=segments[i][2].speech_ratio,
                               language=config.language) for i in picked]
    generate = model_generate_fn(omni, config.prompt(), None, windows, runtime, rows=task_rows)
    try:
        return run_guarded_task(generate, config, contexts)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        runtime.free_after_oom()
        if len(picked) == 1:
            return [exc]
    return [output for i, row in zip(picked, task_rows)
            for output in _guarded_outputs(omni, config, [i], [row], segments, options, runtime)]


def _segments_of(prepared) -> list[tuple[Recording, int, object]]:
    """(recording, segment index, segment) of every segment of a group's readable recordings."""
    return [(rec, index, seg) for rec in prepared if isinstance(rec, Recording) for index, seg in enumerate(rec.segments)]


def _by_duration(segments) -> list[int]:
    """Similar lengths share a batch, so little compute goes to padding; digital silence is left out, as no
    model is asked to hear it (stage_rows.silent_row)."""
    heard = (i for i in range(len(segments)) if not is_digital_silence(segments[i][2]))
    return sorted(heard, key=lambda i: segments[i][2].span.duration_s)


def _tokenise(omni: OmniModel, configs, segments, todo: dict[str, frozenset[str]], batch: list[int]) -> _TokenisedBatch:
    """Read the batch's audio and tokenise it for each task still to do there.

    A segment whose audio cannot be read (a file that breaks mid-way) or that the processor refuses
    fails its own recording, never the other recordings sharing its batch.
    """
    failed: dict[int, str] = {}
    audio_of = {}
    for i in batch:
        try:
            audio_of[i] = segments[i][0].read(segments[i][2])
        except DecodeError as exc:
            failed[i] = f"decoding failed mid-file: {exc}"
    by_task = {}
    for config in configs:
        # A task already done for a recording (only another task's options changed) is not redone.
        chosen = [i for i in batch if i in audio_of and config.name in todo[segments[i][0].source.source_path]]
        picked, rows = [], []
        for i in chosen:
            # These come from the clip's data (Qwen2.5's processor raised IndexError on an empty clip); a
            # TypeError is our bug, or a transformers API change: it stops the run rather than fail every recording.
            try:
                rows += prepare_rows(omni, [audio_of[i]], config.prompt())
            except (RuntimeError, ValueError, IndexError) as exc:
                span = segments[i][2].span
                failed[i] = (f"the model's processor cannot take the audio at {span.start_s:.1f}-{span.end_s:.1f} s "
                             f"({type(exc).__name__}: {exc})")  # the error row makes it one line
                continue
            picked.append(i)
        if picked:
            by_task[config.name] = (picked, rows)
    return _TokenisedBatch(batch, by_task=by_task, failed=failed)


@dataclass
class _TokenisedBatch:
    """One batch of a group's segments, read and tokenised per task: (segment indices, their rows), and the
    segments that could not be (index -> why: it fails their recording)."""

    batch: list[int]
    by_task: dict[str, tuple[list[int], list]] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
