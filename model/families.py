"""Which family a model belongs to, told from its config (never from its name)."""

from __future__ import annotations

import json
from pathlib import Path

from .family import ModelFamily, UnsupportedFeatureError
from .family_qwen3 import QWEN3_OMNI
from .family_qwen25 import QWEN25_OMNI
from .presets import ModelSource, UnknownModelError

FAMILIES: dict[str, ModelFamily] = {f.name: f for f in (QWEN3_OMNI, QWEN25_OMNI)}

__all__ = ["FAMILIES", "ModelFamily", "UnsupportedFeatureError", "detect_family", "family_for_config",
           "family_named"]


def family_named(name: str) -> ModelFamily:
    return FAMILIES[name]


def family_for_config(config: dict, where: str) -> ModelFamily:
    model_type = config.get("model_type")
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    known = ", ".join(t for f in FAMILIES.values() for t in f.model_types)
    raise UnknownModelError(f"--model {where!r}: config model_type {model_type!r} is not a supported "
                            f"Qwen-Omni family ({known})")


def detect_family(source: ModelSource, revision: str | None = None) -> ModelFamily:
    """A preset knows its family; any other model is read from its config.json (local, cached or hub)."""
    if source.preset is not None:
        return family_named(source.preset.family)
    if source.is_local:
        path = Path(source.location) / "config.json"
    else:
        from .hub import hub_config_path

        path = Path(hub_config_path(source, revision))
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # not JSON, not text: a damaged or half-written file
        raise UnknownModelError(f"--model {source.spec!r}: cannot read {path} ({exc})") from exc
    return family_for_config(config, source.spec)
