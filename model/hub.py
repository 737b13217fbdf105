"""Reaching hub models without minutes of silent retries when offline."""

from __future__ import annotations

import os

from .presets import ModelSource


class ModelLoadError(RuntimeError):
    """Weights could not be loaded; the message is one line meant for the user."""


def hub_access(source: ModelSource, revision: str | None) -> dict:
    """Decide how to reach hub weights.

    Cached weights load with no network at all; otherwise one quick metadata
    call tells "no network" and "no such model" apart before any download.
    """
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    cached = try_to_load_from_cache(source.location, "config.json", revision=revision)
    if isinstance(cached, str):
        return {"local_files_only": True}
    hf_home = os.environ.get("HF_HOME", "~/.cache/huggingface")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise ModelLoadError(f"model {source.spec!r} ({source.location}) is not in the local cache (HF_HOME={hf_home}) "
                             "and HF_HUB_OFFLINE is set")
    try:
        HfApi().model_info(source.location, revision=revision, timeout=15)
    except RepositoryNotFoundError as exc:
        raise ModelLoadError(f"no model {source.location!r} on the Hugging Face hub "
                             "(or it is gated: set HF_TOKEN)") from exc
    except HfHubHTTPError as exc:
        raise ModelLoadError(f"hub refused {source.location!r}: {exc.response.status_code if exc.response is not None else exc}") from exc
    except Exception as exc:  # DNS failure, refused connection, timeout
        raise ModelLoadError(f"model {source.spec!r} ({source.location}) is not in the local cache (HF_HOME={hf_home}) "
                             f"and the Hugging Face hub cannot be reached: {type(exc).__name__}") from exc
    return {}


def hub_config_path(source: ModelSource, revision: str | None) -> str:
    """The local path of a hub model's config.json: from the cache, else fetched (one small file)."""
    from huggingface_hub import hf_hub_download

    access = hub_access(source, revision)
    try:
        return hf_hub_download(source.location, "config.json", revision=revision, **access)
    except Exception as exc:
        raise ModelLoadError(f"model {source.spec!r}: cannot read its config.json ({type(exc).__name__})") from exc
