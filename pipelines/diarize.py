"""Speaker diarization with a pyannote.audio 4 pipeline, and speaker labels per segment.

`Diarizer` loads a pipeline (a local folder laid out like a hub pipeline, or a
hub id such as pyannote/speaker-diarization-community-1) once and returns the
speaker turns of a recording in recording time. `assign_speakers` then gives each
segment or utterance window the speaker it overlaps most.

Failing to load is never silent and never slow: a hub id that is not in the
local cache is checked with one quick metadata call before pyannote is allowed
near the network, because `hf_hub_download` retries for ~25 s when offline.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .decode import SAMPLE_RATE, AudioFile

DEFAULT_PIPELINE = "pyannote/speaker-diarization-community-1"
_HINT = "pass a local folder with --diarize-model or set HF_TOKEN/HF_HOME"


class DiarizationUnavailable(RuntimeError):
    """The pipeline cannot be loaded; the message is one line for the user."""


@dataclass(frozen=True)
class SpeakerTurn:
    start_s: float  # in the original file's time, like segment start_s/end_s
    end_s: float
    speaker: str  # pyannote's label, e.g. SPEAKER_00; only unique within one recording

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class DiarizeOptions:
    num_speakers: int | None = None  # exact count when known
    min_speakers: int | None = None
    max_speakers: int | None = None
    # pyannote's exclusive diarization has no overlapping turns: one speaker at a time, which is what
    # one `speaker` column per row can hold. False keeps overlapping speech as separate turns.
    exclusive: bool = True

    def pipeline_kwargs(self) -> dict:
        names = ("num_speakers", "min_speakers", "max_speakers")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


class Diarizer:
    """One loaded pyannote pipeline; `diarize` runs it over a recording.

    `token` is the Hugging Face token (the CLI passes HF_TOKEN); it is only
    used for a hub id that is not cached yet. Memory: pyannote needs the whole
    waveform at once, 16 kHz float32 = 230 MB per hour of audio, held only
    during `diarize`.
    """

    def __init__(self, model: str | Path = DEFAULT_PIPELINE, token: str | None = None, device: str = "cpu",
                 options: DiarizeOptions = DiarizeOptions(), cache_dir: str | Path | None = None,
                 revision: str | None = None):
        _disable_telemetry()
        import torch

        self.spec = str(model)
        self.options = options
        self.pipeline = load_pipeline(model, token=token, cache_dir=cache_dir, revision=revision)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.pipeline.to(torch.device(device))

    def diarize(self, audio: str | Path | AudioFile | np.ndarray) -> list[SpeakerTurn]:
        """Speaker turns in seconds from the recording's first sample, ordered by start.

        A path or AudioFile is decoded by the project's own FFmpeg decoder (any
        container); an array must already be 16 kHz mono float32 starting at 0 s.
        """
        import torch

        if isinstance(audio, np.ndarray):
            samples = np.ascontiguousarray(audio, dtype=np.float32)
        else:
            samples = read_whole(audio if isinstance(audio, AudioFile) else AudioFile(audio))
        if samples.ndim != 1:
            raise ValueError(f"expected mono samples (1-D), got shape {samples.shape}")
        if samples.size == 0:
            return []
        # (channel, time) view of the array, no copy: pyannote slices its chunks out of it.
        file = {"waveform": torch.from_numpy(samples)[None], "sample_rate": SAMPLE_RATE, "uri": "recording"}
        with warnings.catch_warnings():
            # pyannote's stats pooling takes the std of a speaker seen in one frame of a chunk: a warning per
            # such chunk on the user's terminal, about a statistic the pipeline weights out anyway.
            warnings.filterwarnings("ignore", message=r"std\(\): degrees of freedom", category=UserWarning)
            output = self.pipeline(file, **self.options.pipeline_kwargs())
        return turns_from_output(output, samples.size / SAMPLE_RATE, self.options.exclusive)


def turns_from_output(output, duration_s: float, exclusive: bool = True) -> list[SpeakerTurn]:
    """pyannote 4 returns DiarizeOutput (legacy=False, the default) or a bare Annotation (legacy=True)."""
    if hasattr(output, "speaker_diarization"):
        annotation = output.exclusive_speaker_diarization if exclusive else output.speaker_diarization
    elif hasattr(output, "itertracks"):
        annotation = output
    else:
        raise TypeError(f"pyannote pipeline returned {type(output).__name__}, not a diarization")
    turns = []
    for segment, _track, label in annotation.itertracks(yield_label=True):
        # Frames near the end may reach past the last sample; keep turns inside the file.
        start, end = max(0.0, float(segment.start)), min(duration_s, float(segment.end))
        if end > start:
            turns.append(SpeakerTurn(start, end, str(label)))
    return sorted(turns, key=lambda t: (t.start_s, t.end_s, t.speaker))


def read_whole(audio: AudioFile) -> np.ndarray:
    """All samples, filled into one buffer sized from the duration.

    Collecting blocks and concatenating would briefly hold two copies (460 MB per hour).
    """
    capacity = int((audio.duration_hint_s or 0.0) * SAMPLE_RATE) + SAMPLE_RATE  # +1 s for resampler rounding
    buffer = np.empty(capacity, dtype=np.float32)
    filled = 0
    for _start_s, block in audio.blocks():
        if filled + block.size > buffer.size:  # the container's duration was wrong: grow
            grown = np.empty(max(2 * buffer.size, filled + block.size), dtype=np.float32)
            grown[:filled] = buffer[:filled]
            buffer = grown
        buffer[filled:filled + block.size] = block
        filled += block.size
    samples = buffer[:filled]
    return samples.copy() if buffer.size > 1.1 * filled + SAMPLE_RATE else samples


# --- loading -----------------------------------------------------------------------------------------


def _disable_telemetry() -> None:
    """pyannote 4 reports usage (file durations) to pyannote.ai unless told not to.

    A captioning tool should not send anything about users' recordings; users
    who want to share it set PYANNOTE_METRICS_ENABLED=1 themselves. Must run
    before pyannote is first imported, which sets its default ("true") then.
    """
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")


def load_pipeline(model: str | Path, token: str | None = None, cache_dir: str | Path | None = None,
                  revision: str | None = None):
    """pyannote Pipeline from a local folder / config.yaml, or a hub id. Raises DiarizationUnavailable."""
    _disable_telemetry()
    location = resolve_pipeline(model, token=token, cache_dir=cache_dir, revision=revision)
    from pyannote.audio import Pipeline

    is_hub = isinstance(location, str)
    try:
        # pyannote prints a multi-line "private or gated" help to stdout before re-raising; the error
        # below says it in one line. (The swap is process-wide, harmless for a load done once per run.)
        with contextlib.redirect_stdout(io.StringIO()):
            pipeline = Pipeline.from_pretrained(location, token=token, cache_dir=cache_dir,
                                                revision=revision if is_hub else None)
    except Exception as exc:  # OSError, HTTP errors, bad YAML, dependency checks: all end the run the same way
        raise DiarizationUnavailable(f"cannot load pyannote pipeline {str(model)!r}: {_reason(exc, model)}") from exc
    if pipeline is None:
        raise DiarizationUnavailable(f"cannot load pyannote pipeline {str(model)!r}: no config.yaml found")
    return pipeline


def resolve_pipeline(model: str | Path, token: str | None = None, cache_dir: str | Path | None = None,
                     revision: str | None = None) -> Path | str:
    """A local Path pyannote can load without network, or the hub id once the hub answered."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.yaml").is_file():
            raise DiarizationUnavailable(f"{path} is not a pyannote pipeline folder: it has no config.yaml")
        return path
    if path.is_file():
        return path
    spec = str(model)
    if path.is_absolute() or spec.startswith((".", "~")) or spec.endswith((".yaml", ".yml")) or spec.count("/") != 1:
        raise DiarizationUnavailable(f"no pyannote pipeline at {spec}: no such folder, and not a hub id (owner/name)")
    return _hub_location(spec, token, cache_dir, revision)


def _hub_location(repo_id: str, token: str | None, cache_dir: str | Path | None, revision: str | None) -> Path | str:
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, HFValidationError, RepositoryNotFoundError

    try:
        cached = try_to_load_from_cache(repo_id, "config.yaml", cache_dir=cache_dir, revision=revision)
    except HFValidationError as exc:
        raise DiarizationUnavailable(f"{repo_id!r} is neither a pipeline folder nor a valid hub id") from exc
    if isinstance(cached, str):
        # The snapshot folder has the hub layout; loading it as a folder keeps pyannote off the network.
        return Path(cached).parent
    unavailable = f"cannot load pyannote pipeline {repo_id!r}: not in the local cache"
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise DiarizationUnavailable(f"{unavailable} and HF_HUB_OFFLINE is set; {_HINT}")
    try:
        HfApi().model_info(repo_id, revision=revision, token=token, timeout=10)
    except GatedRepoError as exc:
        raise DiarizationUnavailable(f"{unavailable} and it is gated: accept its conditions on "
                                     f"https://hf.co/{repo_id} and set HF_TOKEN") from exc
    except RepositoryNotFoundError as exc:
        raise DiarizationUnavailable(f"{unavailable} and the hub has no such model "
                                     "(or it is private: set HF_TOKEN)") from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if getattr(exc, "response", None) is not None else type(exc).__name__
        raise DiarizationUnavailable(f"{unavailable} and the hub refused it ({status}); {_HINT}") from exc
    except Exception as exc:  # DNS failure, refused connection, timeout
        raise DiarizationUnavailable(f"{unavailable} and the hub cannot be reached "
                                     f"({type(exc).__name__}); {_HINT}") from exc
    return repo_id


def _reason(exc: Exception, model: str | Path) -> str:
    from huggingface_hub.errors import GatedRepoError

    if isinstance(exc, GatedRepoError) or getattr(getattr(exc, "response", None), "status_code", None) in (401, 403):
        return f"access denied (gated: accept its conditions on https://hf.co/{model} and set HF_TOKEN)"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# --- speakers per segment ----------------------------------------------------------------------------


class _Span(Protocol):
    @property
    def start_s(self) -> float: ...

    @property
    def end_s(self) -> float: ...


def assign_speakers(spans: Sequence[_Span], turns: Sequence[SpeakerTurn]) -> list[str | None]:
    """For each span, the speaker whose turns overlap it longest in total; None where no turn overlaps.

    Ties go to the speaker who starts talking first inside the span, then by
    name, so the answer does not depend on the order of `turns`.
    """
    ordered = sorted(turns, key=lambda t: (t.start_s, t.end_s, t.speaker))
    starts = [t.start_s for t in ordered]
    # Running maximum of turn ends: the first turn that can reach a span is found by bisection even
    # when long turns (non-exclusive diarization) overlap later ones.
    reach = list(np.maximum.accumulate([t.end_s for t in ordered])) if ordered else []
    speakers: list[str | None] = []
    for span in spans:
        overlap: dict[str, float] = {}
        first_start: dict[str, float] = {}
        i = bisect.bisect_right(reach, span.start_s)
        stop = bisect.bisect_left(starts, span.end_s)
        for turn in ordered[i:stop]:
            shared = min(span.end_s, turn.end_s) - max(span.start_s, turn.start_s)
            if shared > 0:
                overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + shared
                first_start.setdefault(turn.speaker, max(span.start_s, turn.start_s))
        speakers.append(min(overlap, key=lambda s: (-overlap[s], first_start[s], s)) if overlap else None)
    return speakers
