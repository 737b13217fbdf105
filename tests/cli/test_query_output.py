import io
import os

import duckdb

from omni_caption.cli import query_output
from omni_caption.cli.query_output import table_text


def _relation():
    return duckdb.connect().sql(
        "SELECT 0 AS segment_index, {'bytes': repeat('x', 90000)::BLOB, 'path': 'a_00000.flac'} AS audio, "
        "[NULL, 'ab'::BLOB] AS \"odd \"\"name\"\"\", NULL::BLOB AS none, 'kept' AS caption")


def test_bytes_are_shown_as_their_size_and_the_rest_as_it_is():
    text = table_text(_relation(), max_rows=10)
    row = next(line for line in text.splitlines() if "a_00000.flac" in line)
    assert "<90000 bytes>" in row and "[NULL, <2 bytes>]" in row and "kept" in row
    assert len(text.splitlines()) == 6 and "\\x78" not in text and 'odd "name"' in text


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_the_table_fits_the_window_and_says_what_it_left_out(monkeypatch):
    relation = duckdb.connect().sql("SELECT " + ", ".join(f"'{c * 30}' AS col_{i}" for i, c in enumerate("abcdefgh")))
    assert max(map(len, table_text(relation, 10).splitlines())) > 250  # into a pipe: whole

    monkeypatch.setattr(query_output.sys, "stdout", _Terminal())
    monkeypatch.setattr(query_output.shutil, "get_terminal_size", lambda: os.terminal_size((100, 40)))
    lines = table_text(relation, 10).splitlines()
    assert max(map(len, lines)) <= 100 and "8 columns" in lines[-1]
