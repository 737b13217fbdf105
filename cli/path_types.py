"""Path options that expand `~`, as a shell would have: the shell leaves it alone in `--out=~/x.parquet` and in
a `--config` file, and `--cache-dir=~/cache` then made a folder named `~` in the working folder (which a later
`rm -rf ~` to tidy it away would take as the home folder)."""

from __future__ import annotations

import os
from pathlib import Path

import click


def _expanded(value):
    return os.path.expanduser(value) if isinstance(value, str) and value.startswith("~") else value


class UserPath(click.Path):
    def convert(self, value, param, ctx):
        return super().convert(_expanded(value), param, ctx)


class UserFile(click.File):
    def convert(self, value, param, ctx):
        return super().convert(_expanded(value), param, ctx)


class DatasetPath(UserPath):
    """An existing dataset. Where there is none yet but a run has committed parts, the error says so:
    a dataset appears only when its run ends."""

    def __init__(self):
        super().__init__(exists=True, path_type=Path)

    def convert(self, value, param, ctx):
        path = Path(_expanded(value))
        if not path.exists():
            from omni_caption.schemas.part_store import work_in_progress

            progress = work_in_progress(path)
            if progress is not None:
                self.fail(f"no dataset at {path} yet: {progress.describe()}", param, ctx)
        return super().convert(value, param, ctx)
