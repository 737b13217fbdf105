"""Tests of the benchmark scripts under bench/ (they are scripts, not a package: loaded by path)."""

import importlib.util
import sys

from tests.conftest import REPO


def load_bench(name: str):
    """bench/<name>.py as a module."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
