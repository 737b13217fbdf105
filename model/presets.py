"""Model presets and how a `--model` value resolves to something loadable."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omni_caption.cache_home import cache_home


@dataclass(frozen=True)
class ModelPreset:
    name: str
    hub_id: str | None  # None: built locally (a tiny random model)
    has_talker: bool
    purpose: str
    family: str = "qwen3-omni"  # a key of model.families.FAMILIES


PRESETS: dict[str, ModelPreset] = {
    "captioner": ModelPreset("captioner", "Qwen/Qwen3-Omni-30B-A3B-Captioner", False,
                             "captions (audio only, no text prompt, <= 30 s)"),
    "thinking": ModelPreset("thinking", "Qwen/Qwen3-Omni-30B-A3B-Thinking", False,
                            "reasoning traces and recording summaries"),
    "instruct": ModelPreset("instruct", "Qwen/Qwen3-Omni-30B-A3B-Instruct", True,
                            "transcripts and voice-back"),
    "qwen2.5-omni-3b": ModelPreset("qwen2.5-omni-3b", "Qwen/Qwen2.5-Omni-3B", True,
                                   "every task but reasoning on a small GPU (prompted captions)", "qwen2.5-omni"),
    "qwen2.5-omni-7b": ModelPreset("qwen2.5-omni-7b", "Qwen/Qwen2.5-Omni-7B", True,
                                   "every task but reasoning on a 24 GB GPU (prompted captions)", "qwen2.5-omni"),
    "tiny-random": ModelPreset("tiny-random", None, True,
                               "tests and the offline demo: random weights, output is nonsense"),
    "tiny-random-2.5": ModelPreset("tiny-random-2.5", None, True,
                                   "tests and the offline demo of the Qwen2.5-Omni family: random weights",
                                   "qwen2.5-omni"),
}


class UnknownModelError(ValueError):
    pass


@dataclass(frozen=True)
class ModelSource:
    """Where weights come from: a preset's hub id, a local folder, or any hub id."""

    spec: str  # what the user typed
    location: str  # hub id or local folder passed to from_pretrained
    is_local: bool
    preset: ModelPreset | None = None

    @property
    def is_tiny_random(self) -> bool:
        return self.preset is not None and self.preset.hub_id is None


def default_cache_dir() -> Path:
    """Where tiny-random and other local artefacts are kept (OMNI_CAPTION_HOME overrides)."""
    return cache_home()


def resolve_model(spec: str, cache_dir: Path | None = None) -> ModelSource:
    """Resolve a `--model` value; raises UnknownModelError with a one-line reason."""
    spec = spec.strip()
    if spec in PRESETS:
        preset = PRESETS[spec]
        if preset.hub_id is None:
            folder = _tiny_random_builder(preset)(cache_dir or default_cache_dir())
            return ModelSource(spec, str(folder), True, preset)
        return ModelSource(spec, preset.hub_id, False, preset)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UnknownModelError(f"--model {spec!r}: folder has no config.json, so it is not a saved model")
        return ModelSource(spec, str(path), True)
    if spec.startswith((".", "/", "~")):
        raise UnknownModelError(f"--model {spec!r}: no such folder")
    org, _, name = spec.partition("/")
    if org and name and "/" not in name:
        return ModelSource(spec, spec, False)
    names = ", ".join(PRESETS)
    raise UnknownModelError(
        f"unknown --model {spec!r}: not a preset ({names}), not a local folder, not a hub id (org/name)"
    )


def _tiny_random_builder(preset: ModelPreset):
    """The function that builds (once) and returns the folder of a tiny random preset."""
    if preset.family == "qwen2.5-omni":
        from .tiny_random_25 import tiny_random_25_dir

        return tiny_random_25_dir
    from .tiny_random import tiny_random_dir

    return tiny_random_dir
