"""Fixtures shared by the pipeline tests."""

from __future__ import annotations

import pytest

from omni_caption.pipelines.span_reader import DecodedAudioCache


@pytest.fixture
def open_caches(monkeypatch):
    """Every DecodedAudioCache made from now on; call it for those still open."""
    made = []
    real = DecodedAudioCache.__init__

    def tracked(self, *args, **kwargs):
        real(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(DecodedAudioCache, "__init__", tracked)
    return lambda: [cache for cache in made if not cache.closed]
