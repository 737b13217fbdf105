"""What `run` prints: the dry run's plan, and the summary of a finished run."""

from __future__ import annotations

from pathlib import Path

import click

from .shown_text import printable

SHOWN_LINES = 20  # an archive of corrupt files would otherwise print one line per file on every rerun


def print_preview(preview) -> None:
    click.echo("Dry run: nothing loaded, decoded or written.")
    click.echo(f"  inputs  {_recordings(preview.recordings)}, {preview.audio_s / 3600:.2f} h of audio by their headers"
               + (f"; {preview.ignored}" if preview.ignored else ""))
    kept = (f", and {_recordings(preview.kept)} of earlier runs that it keeps (--prune drops them)"
            if preview.kept else "")
    click.echo(f"  output  {preview.out} holds work for {preview.stored_recordings} of them{kept}")
    width = max(len(stage.label) for stage in preview.stages)
    for stage in preview.stages:
        per_task = (f"; by task: {', '.join(f'{task} {n}' for task, n in stage.tasks_left.items())}"
                    if len(stage.tasks_left) > 1 and stage.recordings else "")
        click.echo(f"  {stage.label:<{width}}  to do: {_recordings(stage.recordings)}, {stage.audio_s / 3600:.2f} h"
                   f" (done: {stage.done}{per_task})")
    if preview.unreadable:
        click.echo(f"  unreadable, an error row each: {len(preview.unreadable)}")
        _echo_some(preview.unreadable, "    ")
    for line in preview.unread_folders:
        click.echo(f"  warning: {printable(line)}")
    for line in preview.replaced:
        click.echo(f"  replaced: {printable(line)}")
    for line in preview.damaged:
        click.echo(f"  damaged: {printable(line)}")
    if preview.nothing_to_do:
        click.echo("  Nothing to do: the run would only rewrite the output from what it holds.")


def _recordings(count: int) -> str:
    return counted(count, "recording")


def counted(count: int, noun: str) -> str:
    """'1 row', '2 rows': a report reads as written, not as a template."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _echo_some(lines: list[str], indent: str, kind: str = "", where_all: str = "", err: bool = False) -> None:
    """The first SHOWN_LINES of `lines` (as `kind: line`), then how many more there are and where they are."""
    for line in map(printable, lines[:SHOWN_LINES]):
        click.echo(f"{indent}{kind}: {line}" if kind else f"{indent}{line}", err=err)
    if len(lines) > SHOWN_LINES:
        more = f"{indent}... and {len(lines) - SHOWN_LINES} more" + (f" {kind}s" if kind else "")
        click.echo(more + (f"; {where_all}" if where_all else ""), err=err)


def print_summary(summary, out: Path) -> None:
    rows = [
        ("recordings", f"{summary.recordings}"),
        ("ok", f"{summary.ok}"),
        *([("partial", f"{summary.partial} (a task failed; their rows keep the other tasks' results)")]
          if summary.partial else []),
        ("errors", f"{summary.errors}"),
        ("segments", f"{summary.segments}"),
        ("flagged segments", f"{summary.flagged_segments}"),
        ("audio hours", f"{summary.audio_s / 3600:.3f}" + (f" ({summary.run_audio_s / 3600:.3f} worked on in this run)"
                                                           if summary.resumed else "")),
        ("wall time", f"{summary.wall_s:.1f} s"),
        ("speed", f"{summary.realtime_factor:.1f}x realtime" if summary.run_audio_s else "- (no audio to work on)"),
    ]
    width = max(len(k) for k, _ in rows)
    click.echo(f"Wrote {out}")
    if summary.resumed:
        click.echo(f"  resumed: {_recordings(summary.resumed)} {'was' if summary.resumed == 1 else 'were'} already done")
    if summary.ignored:
        click.echo(f"  ignored: {summary.ignored}")
    if summary.kept:
        click.echo(f"  kept: {_recordings(summary.kept)} of earlier runs, not among these inputs, as they were "
                   f"(--prune drops them)")
    for key, value in rows:
        click.echo(f"  {key:<{width}}  {value}")
    _echo_some(summary.error_lines, "  ", "error",
               f"`omni-caption info {out} --max-errors {len(summary.error_lines)}` lists them all", err=True)
    _echo_some(summary.warning_lines, "  ", "warning", err=True)
    if summary.nonsense_model:
        click.echo("  note: tiny random models have random weights; what they wrote (captions, transcripts, speakers, ...) "
                   "is nonsense.")
