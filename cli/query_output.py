"""How `query` prints a result: a table for reading, JSON lines or CSV for other programs."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

FULL_WIDTH = 10_000  # into a pipe or a file: every column, whole, for grep and friends
ROWS_PER_FETCH = 10_000  # fetched at once, all rows took about 4 KB each of memory: 4 GB for a million segments


OUT_SUFFIX_FORMATS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json"}


def query_output_format(fmt: str | None, out: str | None) -> str:
    """The format `query` writes: `--format` as given, else the kind `--out`'s name ends in, else table."""
    import click

    if out is not None and out.endswith("/"):  # as a Path it loses the `/`, and a file of that name was written
        raise click.UsageError(f"--out {out} names a folder: give a file name, e.g. {out}rows.parquet")
    if out is None:
        if fmt == "parquet":
            raise click.UsageError("--format parquet needs --out FILE ('-': stdout)")
        return fmt or "table"
    if fmt is None:
        fmt = OUT_SUFFIX_FORMATS.get(Path(out).suffix.lower())
        if fmt is None:
            raise click.UsageError(f"--out {out}: give --format csv, json or parquet (or a name ending in "
                                   f"{', '.join(OUT_SUFFIX_FORMATS)})")
    if fmt == "table":
        raise click.UsageError("--format table is for the terminal: --out writes csv, json or parquet")
    return fmt


def table_text(relation, max_rows: int) -> str:
    """DuckDB's box table of `relation`. On a terminal it fits the window, as DuckDB's own shell does
    (long cells cut, middle columns left out and counted); elsewhere it is whole. A binary value (an
    embedded clip's FLAC) is shown as its size: its bytes, escaped, took dozens of lines per row."""
    import io
    from contextlib import redirect_stdout

    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else FULL_WIDTH
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        _bytes_as_sizes(relation).show(max_rows=max_rows, max_width=width)
    return buffer.getvalue().rstrip("\n")


def _bytes_as_sizes(relation):
    if not any("BLOB" in str(kind) for kind in relation.types):
        return relation
    return relation.project(", ".join(f"{_shown(_quoted(name), kind)} AS {_quoted(name)}"
                                      for name, kind in zip(relation.columns, relation.types)))


def _shown(expression: str, kind) -> str:
    """`expression` of DuckDB type `kind`, with each BLOB in it, at any depth of structs and lists, as
    '<N bytes>'."""
    if "BLOB" not in str(kind):
        return expression
    if kind.id == "blob":
        return f"'<' || octet_length({expression}) || ' bytes>'"
    if kind.id == "struct":
        fields = ", ".join(f"{_quoted(name)} := {_shown(f'({expression}).{_quoted(name)}', child)}"
                           for name, child in kind.children)
        return f"CASE WHEN {expression} IS NULL THEN NULL ELSE struct_pack({fields}) END"
    if kind.id == "list":
        return f"list_transform({expression}, item -> {_shown('item', kind.child)})"
    return f"CAST({expression} AS VARCHAR)"  # a map or union of bytes: rare enough to show as text


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def json_value(value):
    """What JSON has no type for: bytes (an embedded clip's FLAC) as base64, as JSON APIs send binary;
    dates, decimals and the like as their text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def csv_value(value):
    """A list or struct (flags, scores, models) as JSON text, which any reader of the CSV can parse (Python's
    repr is not JSON), and bytes as base64, as in --format json."""
    if isinstance(value, (list, tuple, dict)):
        import json

        return json.dumps(value, default=json_value, ensure_ascii=False)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return json_value(value)
    return value


def write_rows(relation, fmt: str, stream) -> int:
    """`relation` as CSV (a header, then the rows) or JSON lines into `stream`, a chunk of rows at a time; returns
    the rows written."""
    import csv
    import json

    columns = relation.columns
    writer = csv.writer(stream) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(columns)
    written = 0
    while rows := relation.fetchmany(ROWS_PER_FETCH):
        written += len(rows)
        if writer is not None:
            writer.writerows([csv_value(v) for v in row] for row in rows)
        else:
            stream.write("".join(json.dumps(dict(zip(columns, row)), default=json_value, ensure_ascii=False) + "\n"
                                 for row in rows))
    return written
