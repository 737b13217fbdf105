"""`search`, `info` and `export`: reading a finished dataset. The work is in schemas; this parses and prints."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import unicodedata
from dataclasses import asdict
from pathlib import Path

import click

from .path_types import DatasetPath, UserPath
from .run_report import counted
from .shown_text import printable

EXPORT_FORMATS = ("hf", "jsonl", "csv", "srt", "vtt", "lhotse", "nemo")
POINTING_FORMATS = ("lhotse", "nemo")  # manifests that point at the recordings: --audio-root finds them
ONE_FILE_FORMATS = ("jsonl", "csv", "nemo")  # each writes one file, which may be stdout


def file_name_for(fmt: str) -> str:
    """A name to suggest for the one file `fmt` writes."""
    return "manifest.json" if fmt == "nemo" else f"captions.{fmt}"


def fail(ctx: click.Context, exc: BaseException, debug: bool) -> None:
    """One line on stderr and exit 1; the traceback only with --debug. A reader that stopped reading
    (`| head`) is no error to report: click ends the command quietly, with status 1."""
    if isinstance(exc, BrokenPipeError):
        discard_stdout()
        raise exc
    if debug:
        raise exc
    message = " ".join(str(exc).split()) or type(exc).__name__
    click.echo(f"Error: {message}", err=True)
    ctx.exit(1)


def discard_stdout() -> None:
    """The reader has gone (`| head -1`): what is still in Python's buffer goes nowhere, where its flush at exit
    printed 'Exception ignored ... BrokenPipeError' and made the exit status 120."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # not a real file (CliRunner's)
        pass


def refuse_writing_over(dataset: Path, out: Path, option: str) -> None:
    """What query and export write never lands on the dataset they read, or in its folder: an `hf` export
    over `captions.parquet` replaced it, and one into a sharded dataset's folder doubled its rows. Nor is it
    named as a recording: `--out talk.wav`, meant as another name, replaced the recording with JSON."""
    from omni_caption.file_kinds import is_media

    target, source = out.resolve(), dataset.resolve()
    if target == source or source in target.parents:
        raise ValueError(f"{option} {out} would overwrite the dataset being read ({dataset}), or write into its "
                         "folder: give a path beside it")
    if is_media(out):
        raise ValueError(f"{option} {out} is named as a recording ({out.suffix}): give the output another name")


# Named so, an --out is meant as a file: a format that writes a folder made a folder of that name.
FILE_SUFFIXES = (".jsonl", ".json", ".gz", ".csv", ".tsv", ".txt", ".srt", ".vtt", ".parquet")


def refuse_folder_over_file(fmt: str, out: Path) -> None:
    """A format that writes a folder, given a file or a file's name, or one that writes a file, given a folder:
    said so, not as `[Errno 17] File exists`, `[Errno 21] Is a directory`, or a folder named `x.jsonl`."""
    from omni_caption.schemas.export_formats import is_subtitle_file

    if (fmt in ("srt", "vtt") and not is_subtitle_file(out, fmt)) or fmt == "lhotse" or (
            fmt == "hf" and out.suffix != ".parquet"):
        also = " (or a .parquet file)" if fmt == "hf" else ""
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file, and --format {fmt} writes a folder{also}: give a folder")
        if not out.exists() and out.suffix.lower() in FILE_SUFFIXES:
            raise ValueError(f"--out {out} is named as a file ({out.suffix}), and --format {fmt} writes a "
                             f"folder{also}: give a folder")
    elif fmt in ONE_FILE_FORMATS and out.is_dir():
        raise ValueError(f"--out {out} is a folder, and --format {fmt} writes one file: give a file name, e.g. "
                         f"{out / file_name_for(fmt)}")


def write_query_file(relation, fmt: str, output: Path, dataset: Path) -> int:
    """`query --out FILE`: Parquet by DuckDB's own writer, or csv or JSON lines as printed, streamed and
    landing atomically; returns the rows written."""
    import pyarrow.parquet as pq

    from omni_caption.schemas.export_formats import atomic_output

    from .query_output import write_rows

    refuse_writing_over(dataset, output, "--out")
    with atomic_output(output) as tmp:
        if fmt == "parquet":
            relation.write_parquet(str(tmp), compression="zstd")
            return pq.ParquetFile(tmp).metadata.num_rows
        with open(tmp, "w", encoding="utf-8", newline="") as stream:
            return write_rows(relation, fmt, stream)


@click.command(name="search")
@click.argument("dataset", type=DatasetPath())
@click.argument("text", nargs=-1, required=True)  # words unquoted are one search, as a search box takes them
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="Most hits shown.")
@click.option("--format", "fmt", default="table", show_default=True, type=click.Choice(["table", "csv", "json"]))
@click.option("--index-cache/--no-index-cache", default=True, show_default=True,
              help="Keep the search index under search/ in the cache folder ($OMNI_CAPTION_HOME, else "
                   "$XDG_CACHE_HOME/omni-caption, else ~/.cache/omni-caption) for the next search, or build it in "
                   "memory and drop it.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def search_command(ctx, dataset, text, limit, fmt, index_cache, debug):
    """BM25 search of captions, transcripts and summaries in DATASET.

        omni-caption search captions.parquet dog barking --limit 5

    Words are matched by stem ("barking" finds "barks"); a few English stop
    words (the, a, of, ...) are ignored. Each hit is a segment, with the
    column that matched best; a summary hit is its whole recording (no
    segment_index). The first search of a dataset builds its index (minutes
    for a million segments); later ones reuse it until the dataset changes.
    """
    import duckdb

    from omni_caption.schemas.fts_search import search_dataset

    try:
        result = search_dataset(dataset, " ".join(text), limit, use_cache=index_cache)
    except (duckdb.Error, ValueError, OSError) as exc:
        fail(ctx, exc, debug)
        return
    if result.notice:
        click.echo(f"note: {result.notice}", err=True)
    columns = ["source_path", "segment_index", "start_s", "end_s", "score", "field", "text"]
    rows = [[getattr(h, c) for c in columns] for h in result.hits]
    if fmt == "json":
        for row in rows:
            click.echo(json.dumps(dict(zip(columns, row)), ensure_ascii=False))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    elif not rows:
        click.echo("no matches")
    else:
        click.echo(_table(columns, [[_cell(v) for v in row] for row in rows]))


def _cell(value, width: int = 80) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    text = printable(" ".join(str("" if value is None else value).split()))
    if _columns_of(text) <= width:
        return text
    kept, used = [], 0
    for char in text:
        used += _columns_of(char)
        if used > width - 1:
            break
        kept.append(char)
    return "".join(kept) + "…"


def _columns_of(text: str) -> int:
    """Terminal columns `text` takes: CJK and other wide characters take two, combining marks none."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _table(columns: list[str], rows: list[list[str]]) -> str:
    widths = [max(_columns_of(c), *(_columns_of(r[i]) for r in rows)) for i, c in enumerate(columns)]
    line = lambda cells: "  ".join(c + " " * (w - _columns_of(c)) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in rows])


@click.command(name="info")
@click.argument("dataset", type=DatasetPath())
@click.option("--format", "fmt", default="text", show_default=True, type=click.Choice(["text", "json"]))
@click.option("--max-errors", default=20, show_default=True, type=click.IntRange(min=0),
              help="Error lines shown in text format (json lists all).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def info_command(ctx, dataset, fmt, max_errors, debug):
    """Hours, recordings, segments, flags, errors, models and versions of DATASET."""
    import duckdb

    from omni_caption.schemas.dataset_info import describe_dataset
    from omni_caption.schemas.part_store import work_in_progress

    try:
        summary = describe_dataset(dataset)
    except (duckdb.Error, ValueError, OSError) as exc:
        fail(ctx, exc, debug)
        return
    if fmt == "json":
        click.echo(json.dumps(asdict(summary), ensure_ascii=False, indent=2))
        return
    lines = [
        ("dataset", f"{dataset} ({len(summary.files)} file{'s' if len(summary.files) != 1 else ''})"),
        ("schema version", ", ".join(summary.schema_versions)),
        ("tool version", ", ".join(summary.tool_versions)),
        ("audio hours", f"{summary.audio_hours:.3f}"),
        ("recordings", f"{summary.recordings} ({summary.recordings_ok} ok, "
                       + (f"{summary.recordings_partial} partial, " if summary.recordings_partial else "")
                       + f"{summary.recordings_error} error)"),
        *([("copies", f"{summary.copies} recording{'s are' if summary.copies != 1 else ' is'} byte-identical to "
                      f"another (the same recording_id), counted again in the hours")] if summary.copies else []),
        ("segments", f"{summary.segments} ({summary.flagged_segments} flagged)"),
        ("prompt versions", ", ".join(summary.prompt_versions) or "-"),
    ]
    progress = work_in_progress(dataset)
    if progress is not None:
        lines.append(("in progress", progress.describe()))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        click.echo(f"{key:<{width}}  {value}")
    _section("languages", [f"{lang}: {n}" for lang, n in summary.languages.items()])
    _section("models", [f"{task}: {', '.join(ids)}" for task, ids in summary.models.items()])
    _section("flags", [f"{flag}: {n}" for flag, n in summary.flag_counts.items()])
    errors = [f"{path}: {error}" for path, error in summary.errors[:max_errors]]
    if len(summary.errors) > max_errors:
        errors.append(f"... and {len(summary.errors) - max_errors} more (--max-errors, or --format json)")
    _section("errors", errors)


def _section(title: str, items: list[str]) -> None:
    if items:
        click.echo(f"{title}:")
        for item in items:
            click.echo(f"  {printable(item)}")


@click.command(name="export")
@click.argument("dataset", type=DatasetPath())
@click.option("--format", "fmt", required=True, type=click.Choice(EXPORT_FORMATS),
              help="hf: Parquet for Hugging Face datasets; jsonl: one object per row; csv: one line per row "
                   "(lists and structs as JSON text); srt/vtt: one subtitle file per recording; lhotse: "
                   "recordings and supervisions manifests; nemo: a NeMo manifest, one JSON line per segment "
                   "(audio_filepath, offset, duration, text).")
@click.option("--out", "-o", "out", required=True, type=UserPath(),  # str: a trailing / says a folder is meant
              help="jsonl, csv, nemo: a file ('-': stdout). hf: a .parquet file, or a folder (Hub layout). srt, "
                   "vtt, lhotse: a folder.")
@click.option("--audio-root", multiple=True, type=UserPath(exists=True, path_type=Path),
              help="lhotse, nemo: where the recordings are (source_path is relative to it). "
                   "Default: the run's inputs stored in the dataset, else the current folder.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def export_command(ctx, dataset, fmt, out, audio_root, debug):
    """Write DATASET in another format.

        omni-caption export captions.parquet --format srt --out subtitles/
    """
    import duckdb

    from omni_caption.schemas import export_formats
    from omni_caption.schemas.export_formats import written_through

    if audio_root and fmt not in POINTING_FORMATS:  # the others name no audio files: a mistake, not a no-op
        raise click.UsageError(f"--audio-root is for --format lhotse or nemo, whose manifests point at the "
                               f"recordings; --format {fmt} does not read them")
    if out.endswith("/") and fmt in ONE_FILE_FORMATS:  # a Path drops the `/`: it wrote a file of that name
        raise click.UsageError(f"--out {out} names a folder, and --format {fmt} writes one file: give a file name, "
                               f"e.g. {out}{file_name_for(fmt)}")
    out = Path(out)
    if str(out) == "-":  # stdout, as `--files-from -` is stdin: it made a file named `-`
        if fmt not in ONE_FILE_FORMATS:
            raise click.UsageError(f"--out - (stdout) is for --format jsonl, csv or nemo; --format {fmt} writes "
                                   f"files")
        out = Path("/dev/stdout")
    try:
        refuse_writing_over(dataset, out, "--out")
        refuse_folder_over_file(fmt, out)
        if fmt == "jsonl":
            result = export_formats.export_jsonl(dataset, out)
        elif fmt == "csv":
            result = _export_csv(dataset, out)
        elif fmt == "hf":
            result = export_formats.export_hf(dataset, out)
        elif fmt in ("srt", "vtt"):
            result = export_formats.export_subtitles(dataset, out, fmt)
        elif fmt == "nemo":
            from omni_caption.schemas.export_nemo import export_nemo

            result = export_nemo(dataset, out, _audio_roots(dataset, audio_root))
        else:
            result = _export_lhotse(dataset, out, _audio_roots(dataset, audio_root))
    except (duckdb.Error, ValueError, OSError) as exc:
        fail(ctx, exc, debug)
        return
    for line in result.skipped:
        click.echo(f"skipped: {line}", err=True)
    what = {"srt": "cue", "vtt": "cue", "lhotse": "supervision", "nemo": "manifest line"}.get(fmt, "row")
    where = out if len(result.paths) != 1 else result.paths[0]
    # Into /dev/stdout the file is the output: the report goes beside it, to stderr.
    click.echo(f"Wrote {counted(result.rows, what)} to {where} ({counted(len(result.paths), 'file')})",
               err=written_through(out))


def _export_csv(dataset: Path, out: Path):
    """As `query DATASET "SELECT * FROM segments" --format csv` writes it, an embedded clip as its path alone."""
    from omni_caption.schemas import run_query
    from omni_caption.schemas.export_formats import ROWS_WITHOUT_AUDIO_BYTES, ExportResult, atomic_output

    from .query_output import write_rows

    with atomic_output(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as file:
        rows = write_rows(run_query(dataset, ROWS_WITHOUT_AUDIO_BYTES), "csv", file)
    return ExportResult([out], rows, [])


def _audio_roots(dataset: Path, audio_root: tuple[Path, ...]) -> list[Path]:
    """Where the recordings of a manifest that points at them are: --audio-root, else the run's inputs stored in
    the dataset, else the working folder."""
    if audio_root:
        return list(audio_root)
    import pyarrow.parquet as pq

    from omni_caption.schemas.duckdb_views import dataset_files
    from omni_caption.schemas.parquet_store import DatasetInfo

    run_config = DatasetInfo.from_metadata(pq.read_schema(dataset_files(dataset)[0]).metadata).run_config
    return [Path(p) for p in run_config.get("inputs", [])] or [Path.cwd()]


def _export_lhotse(dataset: Path, out: Path, audio_roots: list[Path]):
    from omni_caption.pipelines.probe import heard_channel, probe_audio
    from omni_caption.schemas.export_lhotse import export_lhotse

    return export_lhotse(dataset, out, audio_roots, probe_audio, heard_channel)
