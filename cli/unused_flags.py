"""Flags given on the command line that this run would not use: a mistake, said before hours of work.

`omni-caption recs --out c.parquet --question "Is anyone angry?"` captioned the
corpus and asked nothing: the question belongs to the reasoning task, which
`--tasks` (default: caption) left out. `--num-speakers 2` without `--diarize`
likewise named no speakers. Only flags typed on the command line are judged:
a `--config` file holds defaults for many runs, not all of which use each one.
"""

from __future__ import annotations

import click
from click.core import ParameterSource

# parameter -> the task that reads it
_NEEDS_TASK = {"question": "reasoning", "reasoning_model": "reasoning", "caption_model": "caption",
               "transcript_model": "transcript", "language": "transcript", "summary_model": "summary",
               "summary_from": "summary"}
_NEEDS_DIARIZE = ("diarize_model", "num_speakers", "min_speakers", "max_speakers")
_NEEDS_RAY = ("ray_address", "workers", "num_gpus_per_worker")


def check_flags_are_used(ctx: click.Context, tasks: tuple[str, ...], diarize: bool, engine: str) -> None:
    """Raise click.UsageError (exit 2) for the first command-line flag that nothing in this run reads."""
    for name, task in _NEEDS_TASK.items():
        if _typed(ctx, name) and task not in tasks:
            raise click.UsageError(f"{_flag(name)} is for the {task} task, which --tasks leaves out: add {task} to "
                                   f"--tasks (now {','.join(tasks)})")
    for name in _NEEDS_DIARIZE:
        if _typed(ctx, name) and not diarize:
            raise click.UsageError(f"{_flag(name)} is for diarization: add --diarize")
    for name in _NEEDS_RAY:
        if _typed(ctx, name) and engine != "ray":
            raise click.UsageError(f"{_flag(name)} is for the Ray engine: add --engine ray")


def _typed(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
