"""What kind of file a path is, where a regular file is expected.

At the package's root, beside no room (as cache_home.py): `pipelines` asks of its
inputs and --out, `schemas` of the files it exports into, and `schemas` must not
import `pipelines`."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def special_file_kind(path: Path) -> str | None:
    """'a named pipe', 'a socket', ... for what is neither a regular file nor a folder (None otherwise, or
    when it is gone): opening a pipe named like a recording would wait for a writer for ever."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    kinds = {stat.S_ISFIFO: "a named pipe", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a character device",
             stat.S_ISBLK: "a block device"}
    return next((kind for test, kind in kinds.items() if test(mode)), None)
