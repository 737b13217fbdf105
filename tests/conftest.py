"""Shared fixtures: the tiny random models (one per family) are built once per test session, in a temp cache."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable
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


def load_tiny(preset: str, cache_dir: Path, voice: bool = False):
    from omni_caption.model import LoadOptions, load_model

    return load_model(preset, LoadOptions(device="cpu", cache_dir=cache_dir, voice=voice))


@pytest.fixture(scope="session")
def tiny(tiny_dir, cache_dir):
    return load_tiny("tiny-random", cache_dir)


@pytest.fixture(scope="session")
def tiny25_dir(cache_dir) -> Path:
    from omni_caption.model.tiny_random_25 import tiny_random_25_dir

    return tiny_random_25_dir(cache_dir)


@pytest.fixture(scope="session")
def tiny25(tiny25_dir, cache_dir):
    return load_tiny("tiny-random-2.5", cache_dir)


# Each model family's tiny preset -> (its folder fixture, its loaded-model fixture).
FAMILY_PRESETS = {"tiny-random": ("tiny_dir", "tiny"), "tiny-random-2.5": ("tiny25_dir", "tiny25")}


@pytest.fixture(scope="session", params=list(FAMILY_PRESETS))
def omni(request):
    """A thinker-only tiny model of each family in turn: tests taking it run once per family."""
    return request.getfixturevalue(FAMILY_PRESETS[request.param][1])


@pytest.fixture(scope="session", params=list(FAMILY_PRESETS))
def family_preset(request) -> str:
    """Each family's tiny preset name in turn, its folder built in the session cache."""
    request.getfixturevalue(FAMILY_PRESETS[request.param][0])
    return request.param


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


def finishes_within(seconds: float, work: Callable[[], object], hangs: str):
    """`work()`, in a daemon thread: one that waits for ever (a pipe, a GPU that never comes) fails the test
    with `hangs` after `seconds` instead of hanging the suite; an error it raises is raised here."""
    outcome: list = []

    def run():
        try:
            outcome.append((True, work()))
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome.append((False, exc))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=seconds)
    assert outcome, hangs
    finished, value = outcome[0]
    if not finished:
        raise value
    return value
