"""The options of a run, as one dataclass every engine and stage receives."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from omni_caption.captioner import DEFAULT_PRESET, TASKS, normalise_language
from omni_caption.captioner.tasks import DEFAULT_LOOP_STOP_TOKENS, check_loop_stop_tokens
from omni_caption.model.aut_windows import MAX_WINDOW_CHUNKS, MIN_WINDOW_CHUNKS
from omni_caption.model.decode_engine import EngineOptions
from omni_caption.model.decode_runtime import CPU_AUTO_BATCH, DECODERS
from omni_caption.model.hub import ModelLoadError
from omni_caption.model.loading import DTYPES, check_device_name

from .diarize import DiarizeOptions

ENGINES = ("local", "ray")
SUMMARY_SOURCES = ("text", "audio")
GRANULARITIES = ("chunk", "utterance")
MIN_CHUNK_S, MAX_CHUNK_S = 10.0, 30.0  # utterance windows of up to 8 s need room; the Captioner hears <= 30 s


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray engine runs; none of it changes a result, so none of it is in a config hash."""

    address: str | None = None  # None: Ray's own default (RAY_ADDRESS, else a local cluster); "auto"; "ray://..."
    workers: int = 1  # model actors per stage, each holding one model
    num_gpus_per_worker: float = 1.0  # 0 runs the model actors on CPU (tests, the offline demo)
    cpus_per_worker: float = 1.0  # a model actor reads its segments' audio spans
    segment_workers: int | None = None  # decode+VAD actors (1 CPU each); None: as many as free CPUs allow
    retries: int = 3  # restarts of a dead actor, each retrying the group it held; 0: stop, the rerun resumes


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
    batch_size: int | str = "auto"  # sized from free GPU memory after the model loads (8 on a CPU), or a number
    decoder: str = "auto"  # auto (refill engine on CUDA, generate on CPU) | plain | static | refill
    max_new_tokens: int | None = None
    loop_stop_tokens: int = DEFAULT_LOOP_STOP_TOKENS  # a decoding loop stops after this many tokens; 0: at the cap
    greedy: bool = False
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    cache_dir: Path | None = None
    group_recordings: int | None = None  # recordings per committed part; None: grouping.auto_groups
    segment_threads: int | None = None  # recordings decoded + VAD'd at once; None: a quarter of the CPUs, 1 to 4
    overwrite: bool = False  # start fresh instead of resuming
    retry_errors: bool = False  # redo recordings whose last attempt failed
    prune: bool = False  # drop recordings of earlier runs that are not among these inputs (default: kept)
    rows_per_shard: int = 1_000_000  # with a folder --out
    engine: str = "local"  # local: this process; ray: a Ray cluster (pipelines/ray_engine.py)
    ray: RayOptions = field(default_factory=RayOptions)

    def __post_init__(self):
        # The CLI checks its flags; a program that builds options gets the same refusals, in words and at once,
        # rather than a run of ('c', 'a', 'p', ...) tasks, a language the prompt was never meant to name, or a
        # refusal after the inputs are hashed and a model is loaded.
        object.__setattr__(self, "tasks", _named("tasks", parse_tasks, self.tasks))
        unknown = sorted(set(self.task_models) - set(TASKS))
        if unknown:  # a typo'd task would be silently run on its default model
            raise ValueError(f"task_models {', '.join(unknown)}: choose from {', '.join(TASKS)}")
        if self.tasks == ("summary",) and self.summary_from == "text":
            raise ValueError("a summary from text needs captions or transcripts: add caption or transcript to "
                             "tasks, or summarise from the audio (summary_from='audio')")
        if self.cache_dir is not None:  # a str from a program: `cache_dir / name` failed deep in the run; and "~"
            object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())  # made a folder named ~
        object.__setattr__(self, "aut_window", _named("aut_window", parse_aut_window, self.aut_window))
        for name, choices in (("granularity", GRANULARITIES), ("decoder", DECODERS), ("engine", ENGINES),
                              ("dtype", DTYPES), ("summary_from", SUMMARY_SOURCES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, not {getattr(self, name)!r}")
        try:
            check_device_name(self.device)
        except ModelLoadError:
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, not {self.device!r}") from None
        check_loop_stop_tokens(self.loop_stop_tokens)
        for name, least, optional in (("max_new_tokens", 1, True), ("group_recordings", 1, True),
                                      ("segment_threads", 1, True), ("rows_per_shard", 1, False)):
            _check_whole_number(name, getattr(self, name), least, optional)
        object.__setattr__(self, "language", normalise_language(self.language))
        if not MIN_CHUNK_S <= self.max_chunk_s <= MAX_CHUNK_S:
            raise ValueError(f"max_chunk_s must be {MIN_CHUNK_S:g} to {MAX_CHUNK_S:g} s, not {self.max_chunk_s}")
        if self.batch_size != "auto" and (isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int)
                                          or self.batch_size < 1):
            raise ValueError(f"batch_size must be 'auto' or a whole number from 1, not {self.batch_size!r}")

    def vad_device(self) -> str:
        """VAD (and diarization) run on the GPU generation runs on; the frames are tiny next to the model. On the
        same one: a job per GPU (`--device cuda:3`) would otherwise each open a CUDA context on cuda:0."""
        if self.device.startswith("cuda"):
            return self.device
        return "cuda" if self.device == "auto" and _cuda_available() else "cpu"

    def planned_slots(self) -> int:
        """Segments decoded at once, as far as is known before a model loads: the batch size asked for; with
        `auto`, 8 on a CPU and the engine's largest batch on a GPU (its memory decides after loading)."""
        if self.batch_size != "auto":
            return int(self.batch_size)
        on_gpu = self.vad_device().startswith("cuda") or (self.engine == "ray" and self.ray.num_gpus_per_worker > 0)
        return EngineOptions.max_batch if on_gpu else CPU_AUTO_BATCH

    def segmenter_threads(self) -> int:
        """Recordings decoded + VAD'd at once, beside the model: 4 on a 16-core GPU machine, 1 on a small one,
        which leaves its cores to the model. Two at once segment 1.8x faster than one (bench/RESULTS.md)."""
        if self.segment_threads is not None:
            return max(1, self.segment_threads)
        return max(1, min(4, _usable_cpus() // 4))

    def segmentation_key(self) -> str:
        # `times`: segments of datasets made before times counted from the first audio sample (pipelines/decode.py
        # DecodedFrames) sit 0.05 s later in an mp3, 1.4 s in a .ts; their tasks are redone, not merged askew.
        return (f"granularity={self.granularity};max_chunk_s={self.max_chunk_s};aut_window={self.aut_window};"
                "times=from-first-sample")

    def model_for(self, task: str) -> str:
        return self.task_models.get(task) or self.model or DEFAULT_PRESET[task]


def parse_tasks(tasks: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Task names from "caption,transcript" or a sequence, in order, each once; unknown or none is refused."""
    names = tasks.split(",") if isinstance(tasks, str) else list(tasks)
    names = tuple(dict.fromkeys(str(name).strip() for name in names if str(name).strip()))
    unknown = [name for name in names if name not in TASKS]
    if unknown or not names:
        raise ValueError(f"{','.join(unknown) if unknown else repr(tasks)}: choose from {', '.join(TASKS)}")
    return names


def parse_aut_window(value: int | str | None) -> int | str | None:
    """None (the model's own), 'pause', or whole seconds 1..8 as an int: "8" and 8 are one cut, one resume key."""
    if value is None or value == "pause":
        return value
    text = str(value).strip()
    if not isinstance(value, bool) and text.isdigit() and MIN_WINDOW_CHUNKS <= int(text) <= MAX_WINDOW_CHUNKS:
        return int(text)
    raise ValueError(f"{value!r}: give {MIN_WINDOW_CHUNKS}..{MAX_WINDOW_CHUNKS} (seconds) or 'pause'")


def _named(name: str, parse, value):
    try:
        return parse(value)
    except ValueError as exc:
        raise ValueError(f"{name} {exc}") from None


def _check_whole_number(name: str, value, least: int, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be {'None or ' if optional else ''}a whole number from {least}, not {value!r}")


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # a container or taskset may allow fewer than the machine has
    except AttributeError:
        return os.cpu_count() or 1


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
