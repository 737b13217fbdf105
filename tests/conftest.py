"""Shared fixtures: the tiny-random model is built once per test session, in a temp cache."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "recordings"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("omni-caption-home")


@pytest.fixture(scope="session")
def tiny_dir(cache_dir) -> Path:
    from omni_caption.model.tiny_random import tiny_random_dir

    return tiny_random_dir(cache_dir)


@pytest.fixture(scope="session")
def tiny(tiny_dir, cache_dir):
    from omni_caption.model import LoadOptions, load_model

    return load_model("tiny-random", LoadOptions(device="cpu", cache_dir=cache_dir))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def ffmpeg(*args: str) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is not installed: the set-up command installs it (apt-get install -y ffmpeg)")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


def make_tone(path: Path, seconds: float = 2.0, freq: int = 440, extra: tuple[str, ...] = ()) -> Path:
    """A sine tone in whatever container/codec `path`'s extension implies."""
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate=44100:duration={seconds}", *extra, str(path))
    return path
