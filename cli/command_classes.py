"""The click classes behind the command line: the group whose bare path is the main job, and the commands that
read what a user meant where click's own parsing took it otherwise."""

from __future__ import annotations

import difflib
import errno
import os
import sys

import click
from click_default_group import DefaultGroup

from omni_caption.file_kinds import is_dataset

from .completion import complete_main_job_group
from .dataset_commands import discard_stdout


class MainJobGroup(DefaultGroup):
    """A bare path runs the main job; a misspelt command that names no file says so, where DefaultGroup took
    `omni-caption serach ds.parquet dog` for a run over a folder `serach` and answered "Missing option --out"."""

    def get_command(self, ctx: click.Context, cmd_name: str):
        if cmd_name not in self.commands and not os.path.lexists(cmd_name):
            commands = [name for name in self.commands if name != self.default_cmd_name]
            close = difflib.get_close_matches(cmd_name, commands, n=1)
            if close:
                raise click.UsageError(f"no command {cmd_name!r} (did you mean {close[0]!r}?), and no file or "
                                       "folder of that name to run the main job on")
        return super().get_command(ctx, cmd_name)

    def shell_complete(self, ctx: click.Context, incomplete: str):
        return complete_main_job_group(self, self.commands[self.default_cmd_name], ctx, incomplete)

    def invoke(self, ctx: click.Context):
        """An OSError no command caught is one line, not a traceback: most often stdout's own (`query ... >
        report.csv` on a full disk), which click handles only for a closed pipe."""
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if exc.errno == errno.EPIPE or "--debug" in sys.argv[1:]:
                raise
            discard_stdout()  # what is left in stdout's buffer would fail again, with a traceback, at exit
            click.echo(f"Error: {' '.join(str(exc).split())}", err=True)
            ctx.exit(1)  # as every error the commands report


class SqlCommand(click.Command):
    """SQL that opens with a `--` comment (a saved query, passed as "$(cat report.sql)") is the SQL, where click
    took it for an unknown option: no option's name holds whitespace, and such SQL does before any `=`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.allow_extra_args = True  # SQL left unquoted, named below, where click said "unexpected extra arguments"
        rest = super().parse_args(ctx, ["\n" + arg if _opens_with_sql_comment(arg) else arg for arg in args])
        if ctx.args:
            globbed = [arg for arg in ctx.args if os.path.lexists(arg)]
            raise click.UsageError(
                'the SQL is one argument: quote it whole, as in omni-caption query DATASET "SELECT * FROM '
                'segments"' + (f" (the shell put the names of files here where * stood: {', '.join(globbed)})"
                                  if globbed else ""), ctx)
        return rest


class RunCommand(click.Command):
    """The main job. A dataset named where recordings go with no --out is `query` forgotten
    (`omni-caption captions.parquet "SELECT ..."`), which click answered with "Missing option --out"."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)  # click's parser empties `args` as it reads them
        try:
            return super().parse_args(ctx, args)
        except click.MissingParameter as missing:
            datasets = [arg for arg in given if not arg.startswith("-") and is_dataset(arg)]
            if missing.param is None or missing.param.name != "out" or not datasets:
                raise
            raise click.UsageError(f"{datasets[0]} is a dataset, not a recording: read it with "
                                   f"omni-caption query {datasets[0]} \"SELECT ...\" (or search, info, export); "
                                   "a run over recordings needs --out") from None


def _opens_with_sql_comment(arg: str) -> bool:
    name = arg.split("=", 1)[0]
    return arg.startswith("--") and any(char.isspace() for char in name)
