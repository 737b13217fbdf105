"""How a file's name is stored in `source_path`, which Parquet needs as valid UTF-8.

A name whose bytes are not UTF-8 (a Latin-1 name from an old share) keeps
those bytes as `\\xNN` escapes, as `ls -b` shows them; `name_on_disk` turns
them back, so that the stored path still leads to the file.
"""

from __future__ import annotations

import os
import re

_ESCAPED_BYTE = re.compile(rb"\\x([0-9a-f]{2})")


def stored_name(name: str) -> str:
    """`name` (as Python reads it from the file system) as valid UTF-8."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def name_on_disk(stored: str) -> str:
    """The name `stored_name` was made from, as the file system takes it."""
    if "\\x" not in stored:
        return stored
    raw = _ESCAPED_BYTE.sub(lambda match: bytes([int(match[1], 16)]), stored.encode("utf-8"))
    return os.fsdecode(raw)
