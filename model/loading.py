"""Load a Qwen-Omni model (any family) through the real transformers classes, by hub id or local folder."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .families import ModelFamily, detect_family
from .hf_quiet import quiet_transformers
from .hub import ModelLoadError, hub_access
from .presets import ModelSource, resolve_model
from .tiny_build import NONSENSE_NOTICE

DTYPES = ("auto", "bfloat16", "float16", "float32")


@dataclass(frozen=True)
class LoadOptions:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto: bf16 on GPU, fp32 on CPU
    voice: bool = False  # load the talker and code2wav
    cache_dir: Path | None = None  # tiny-random's home
    revision: str | None = None


@dataclass
class OmniModel:
    """A loaded Qwen-Omni model: the transformers model and processor, its family adapter, and provenance."""

    model: object  # e.g. Qwen3OmniMoeForConditionalGeneration, Qwen2_5OmniForConditionalGeneration
    processor: object  # e.g. Qwen3OmniMoeProcessor, Qwen2_5OmniProcessor
    source: ModelSource
    revision: str | None
    device: str
    dtype: str
    family: ModelFamily
    parameters: int = 0  # all loaded weights: a local folder's label states the model's size with it

    @property
    def model_label(self) -> str:
        """`id@revision` as stored in the `models` column; a hub id names family and size, a local folder
        gets its family appended."""
        name = f"omni-caption/{self.source.spec}" if self.source.is_tiny_random else self.source.location
        label = f"{name}@{self.revision}" if self.revision else name
        if self.source.is_local:
            label += f" ({self.family.name}, {_size_of(self.parameters)})" if self.parameters else f" ({self.family.name})"
        return f"{label} ({NONSENSE_NOTICE})" if self.source.is_tiny_random else label

    @property
    def is_nonsense(self) -> bool:
        return self.source.is_tiny_random


def _size_of(parameters: int) -> str:
    return f"{parameters / 1e9:.1f}B params" if parameters >= 1e8 else f"{parameters / 1e6:.1f}M params"


def check_device_name(device: str) -> re.Match | None:
    """The `cpu|cuda[:N]` match (None for auto); a name torch would not take is refused."""
    if device == "auto":
        return None
    match = re.fullmatch(r"cpu|cuda(?::(\d+))?", device)
    if not match:
        raise ModelLoadError(f"--device {device}: choose auto, cpu, cuda or cuda:N")
    return match


def pick_device(device: str) -> str:
    """The device this process loads onto; a GPU it cannot see is refused."""
    import torch

    match = check_device_name(device)
    if match is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"--device {device}: no CUDA GPU is visible to torch")
    if match.group(1) is not None and int(match.group(1)) >= (count := torch.cuda.device_count()):
        shown = f"cuda:0 to cuda:{count - 1}" if count > 1 else "cuda:0 only"
        raise ModelLoadError(f"--device {device}: torch sees {count} CUDA GPU{'s' * (count != 1)} "
                             f"({shown}; CUDA_VISIBLE_DEVICES renumbers them from 0)")
    return device


def pick_dtype(dtype: str, device: str):
    import torch

    if dtype not in DTYPES:
        raise ModelLoadError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def _revision_of(source: ModelSource, revision: str | None) -> str | None:
    """The weights' revision for the `models` column: a hub model's commit (its snapshot folder in the cache:
    transformers 5 no longer sets config._commit_hash), a local folder's digest of its weight files."""
    if not source.is_local:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source.location, "config.json", revision=revision)
        return Path(cached).parent.name[:12] if isinstance(cached, str) else None
    path = Path(source.location)
    weights = sorted(path.glob("*.safetensors")) if path.is_dir() else []
    if weights:
        import hashlib

        digest = hashlib.sha256()
        for w in weights:
            digest.update(w.name.encode())
            digest.update(str(w.stat().st_size).encode())
        return "local-" + digest.hexdigest()[:10]
    return None


def _checkpoint_has_talker(source: ModelSource) -> bool | None:
    """Known before loading 30B of weights? Presets say; a local folder's weight names tell. None: unknown."""
    if source.preset is not None:
        return source.preset.has_talker
    folder = Path(source.location)
    if not source.is_local or not folder.is_dir():
        return None
    import json

    index = folder / "model.safetensors.index.json"
    if index.exists():
        names = json.loads(index.read_text()).get("weight_map", {})
    else:
        from safetensors import safe_open

        names = []
        for weights in folder.glob("*.safetensors"):
            with safe_open(str(weights), framework="pt") as handle:
                names += list(handle.keys())
    return any(name.startswith("talker.") for name in names) if names else None


def load_model(spec: str | ModelSource, options: LoadOptions = LoadOptions()) -> OmniModel:
    """Load model + processor. Raises ModelLoadError / UnknownModelError with one-line messages."""
    source = spec if isinstance(spec, ModelSource) else resolve_model(spec, options.cache_dir)
    if options.voice and _checkpoint_has_talker(source) is False:
        raise ModelLoadError(f"model {source.spec!r} has no talker, so it cannot voice text (use the instruct preset)")
    device = pick_device(options.device)
    if device.startswith("cuda:"):
        import torch

        # What names no device (empty_cache, compiled graphs' streams, kernels' scratch) goes to the model's GPU.
        torch.cuda.set_device(device)
    torch_dtype = pick_dtype(options.dtype, device)
    kwargs = {"revision": options.revision} if options.revision and not source.is_local else {}
    if not source.is_local:
        kwargs.update(hub_access(source, options.revision))
    family = detect_family(source, options.revision)
    model_class, processor_class = family.classes()
    from safetensors import SafetensorError

    try:
        with quiet_transformers():
            processor = processor_class.from_pretrained(source.location, **kwargs)
            loaded = model_class.from_pretrained(
                source.location,
                dtype=torch_dtype,
                enable_audio_output=options.voice,
                **({"output_loading_info": True} if family.reports_loading_info else {}),
                **kwargs,
            )
            model, loading_info = loaded if isinstance(loaded, tuple) else (loaded, {})
    except OSError as exc:
        unreadable = unreadable_files(Path(source.location)) if source.is_local else []
        if unreadable:  # safetensors says "No such file or directory" of a file this user may not read
            raise ModelLoadError(f"cannot load model {source.spec!r} from {source.location}: this user may not read "
                                 f"{', '.join(unreadable)} (its owner can `chmod a+r` it)") from exc
        first_sentence = (str(exc).split(". ")[0] or type(exc).__name__).strip()
        raise ModelLoadError(f"cannot load model {source.spec!r} from {source.location}: {first_sentence}") from exc
    except SafetensorError as exc:  # an interrupted download leaves a weights file cut short
        damaged = damaged_weights(Path(source.location)) if source.is_local else []
        which = ", ".join(damaged) if damaged else "a .safetensors file"
        raise ModelLoadError(f"cannot load model {source.spec!r} from {source.location}: {which} is damaged or "
                             f"incomplete ({exc}); download it again") from exc
    # Asking for audio output builds a talker whatever the checkpoint holds: a thinker-only checkpoint
    # (Captioner, Thinking) would get a randomly initialised one, so check its weights were really loaded.
    missing_talker = [k for k in loading_info.get("missing_keys", ()) if k.startswith(("talker.", "code2wav.", "token2wav."))]
    if options.voice and (not getattr(model, "has_talker", False) or missing_talker):
        raise ModelLoadError(f"model {source.spec!r} has no talker, so it cannot voice text "
                             f"(use the instruct preset, or a {family.title} model with a talker)")
    model.to(device)
    model.eval()
    return OmniModel(model=model, processor=processor, source=source, revision=_revision_of(source, options.revision),
                     device=device, dtype=str(torch_dtype).removeprefix("torch."), family=family,
                     parameters=sum(p.numel() for p in model.parameters()))


def damaged_weights(folder: Path) -> list[str]:
    """The .safetensors files in `folder` whose header or size is wrong (what an interrupted copy leaves)."""
    from safetensors import SafetensorError, safe_open

    damaged = []
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(path, framework="pt"):
                pass
        except (SafetensorError, OSError):
            damaged.append(path.name)
    return damaged


def unreadable_files(folder: Path) -> list[str]:
    """The files of a model folder that this user may not read (weights saved 0600 by another user)."""
    return sorted(p.name for p in folder.glob("*") if p.is_file() and not os.access(p, os.R_OK, effective_ids=True))
