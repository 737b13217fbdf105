"""Shell completion, where click's own completes nothing: the main job's options before its first path, model
presets, and a comma list of tasks. Enabled as click's: eval "$(_OMNI_CAPTION_COMPLETE=bash_source omni-caption)".

Each TAB runs the command, so nothing here imports torch: the task names come from the schema (pyarrow, half a
second), not from the captioner package (seconds).
"""

from __future__ import annotations

import glob

import click
from click.shell_completion import CompletionItem


def complete_model(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The presets that start so; else a folder (a local model). A hub id cannot be listed offline."""
    from omni_caption.model.presets import PRESETS  # light: no torch

    presets = [CompletionItem(name) for name in PRESETS if name.startswith(incomplete)]
    return presets or [CompletionItem(incomplete, type="dir")]


def complete_task_list(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """`caption,tr` -> `caption,transcript`: the last name of the list, never one already in it."""
    from omni_caption.schemas.segment_table import TASKS

    chosen, _, last = incomplete.rpartition(",")
    taken = set(chosen.split(","))
    prefix = f"{chosen}," if chosen else ""
    return [CompletionItem(prefix + name) for name in TASKS if name.startswith(last) and name not in taken]


def complete_main_job_group(group: click.Group, default_command: click.Command, ctx: click.Context,
                            incomplete: str) -> list[CompletionItem]:
    """Before anything is typed after `omni-caption`: an option is the main job's as much as the group's
    (`omni-caption --tasks ... recordings/`), and a word is a command or the path the main job runs on.

    bash cannot show both commands and files in one answer, so a word that begins a name in the working
    folder is a path, and otherwise a command (none typed yet: the commands, as git lists its own)."""
    if incomplete.startswith("-"):
        items = default_command.shell_complete(ctx, incomplete)
        seen = {item.value for item in items}
        return items + [item for item in click.Group.shell_complete(group, ctx, incomplete) if item.value not in seen]
    commands = click.Group.shell_complete(group, ctx, incomplete)
    if not incomplete or (commands and not glob.glob(glob.escape(incomplete) + "*")):
        return commands
    return [CompletionItem(incomplete, type="file")]
