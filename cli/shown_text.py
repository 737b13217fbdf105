"""Text from a dataset or a file name, as one line that a terminal shows as it is."""

from __future__ import annotations

import unicodedata

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """`text` with its control characters written out (`\\n`, `\\x1b`), as DuckDB's tables show them.

    A file name may hold a newline, which would split one report line in two,
    or an escape sequence (ESC [31m), which the terminal would act on instead of
    showing; a model's output may hold a bell. Other characters stay as they are.
    """
    if text.isprintable():
        return text
    return "".join(_NAMED.get(c, f"\\x{ord(c):02x}") if unicodedata.category(c) == "Cc" else c for c in text)
