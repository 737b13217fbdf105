"""Where omni-caption keeps what it can rebuild: tiny models, input hashes, search indexes.

At the package's root, beside no room: `model` and `schemas` both ask, and the
GPU benches import `model` on a machine without the data plane's packages
(duckdb, which `schemas` needs), so it imports nothing of the project's."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """$OMNI_CAPTION_HOME, else omni-caption/ under $XDG_CACHE_HOME, else ~/.cache/omni-caption: one answer for
    every room, so a search index does not land under ~/.cache while the models honour XDG_CACHE_HOME."""
    if os.environ.get("OMNI_CAPTION_HOME"):
        return Path(os.environ["OMNI_CAPTION_HOME"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "omni-caption"
