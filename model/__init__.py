"""Loading and running Qwen-Omni models of every family: presets, family adapters, loading, batched generation, tiny random models."""

from .aut_windows import AutWindows, windows_from_pauses
from .generation import SAMPLE_RATE, DecodingOptions, GenerationResult, Prompt, generate_batch, generate_text
from .loading import LoadOptions, ModelLoadError, OmniModel, load_model
from .presets import PRESETS, ModelSource, UnknownModelError, default_cache_dir, resolve_model

__all__ = [
    "PRESETS", "SAMPLE_RATE", "AutWindows", "windows_from_pauses", "DecodingOptions", "GenerationResult", "LoadOptions", "ModelLoadError",
    "ModelSource", "OmniModel", "Prompt", "UnknownModelError", "default_cache_dir", "generate_batch", "generate_text",
    "load_model", "resolve_model",
]
