"""`--config FILE.toml`: a TOML file of defaults for the run's options; flags on the command line win."""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path

import click


# Commands other than the run that take --config, each reading its own [table] of the file.
COMMAND_TABLES = ("speak",)


def load_config_file(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Its keys become the command's defaults (click's default_map): the run's at the top of the file, another
    command's under its own table (`[speak]`), so one file serves a project.

    A key names an option as its flag does (`max-new-tokens`) or as Python does (`max_new_tokens`). An
    unknown key is an error, not ignored: a misspelt `max_new_token = 64` would otherwise run the whole
    corpus at the default. A list (`tasks = ["caption", "transcript"]`) is the comma list the flag takes.
    """
    if value is None:
        return None
    try:
        data = tomllib.loads(Path(value).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise click.BadParameter(f"cannot read {value}: {exc}") from exc
    for key, setting in data.items():
        if isinstance(setting, dict) and key not in COMMAND_TABLES:
            raise click.BadParameter(f"{value}: [{key}] is a table of no command (tables: "
                                     f"{', '.join(f'[{t}]' for t in COMMAND_TABLES)}); put the run's options at the "
                                     "top of the file, before any [table]")
    own = data if ctx.command.name not in COMMAND_TABLES else data.get(ctx.command.name, {})
    where = value if own is data else f"{value} [{ctx.command.name}]"
    names = option_names(ctx.command)
    params = {param.name: param for param in ctx.command.params}
    defaults = {}
    for key, setting in own.items():
        if isinstance(setting, dict):
            if own is data:
                continue  # another command's table
            raise click.BadParameter(f"{where}: [{key}] is a table; give {ctx.command.name}'s options as keys")
        flag = key.replace("_", "-")
        name = names.get(flag)
        if name is None:
            close = difflib.get_close_matches(flag, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; options: {', '.join(sorted(names))}"
            raise click.BadParameter(f"{where}: {key!r} is not an option of this command{hint}")
        defaults[name] = _setting(params[name], setting, f"{where}: {key} = {_toml_text(setting)}")
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def _setting(param: click.Parameter, setting, where: str):
    """The TOML value as the option takes it; a value of the wrong kind is refused, never bent to fit
    (click would take 3.5 for an integer option as 3, and `diarize = 1` crashed its flag conversion)."""
    if isinstance(param, click.Option) and param.is_flag:
        if isinstance(setting, bool | str):  # a string as on the command line: "yes", "off"
            return setting
        raise click.BadParameter(f"{where}: --{param.name.replace('_', '-')} is a switch: give true or false")
    if isinstance(setting, bool):
        raise click.BadParameter(f"{where}: true or false is only for switches; give the option's value")
    if isinstance(setting, list):
        setting = ",".join(str(item) for item in setting)
    if getattr(param, "multiple", False) and isinstance(setting, str):  # a flag that may be repeated: --tasks
        return (setting,)
    if isinstance(setting, float) and isinstance(param.type, click.types.IntParamType):
        raise click.BadParameter(f"{where}: give a whole number")
    if not isinstance(setting, str | int | float):  # a TOML date or time
        raise click.BadParameter(f"{where}: give a string or a number")
    return setting


def _toml_text(setting: object) -> str:
    return f'"{setting}"' if isinstance(setting, str) else str(setting).lower() if isinstance(setting, bool) else str(setting)


def option_names(command: click.Command) -> dict[str, str]:
    """Each option's long flags without their dashes (`max-new-tokens`) -> its parameter name."""
    names = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.expose_value and param.name:
            for flag in (*param.opts, *param.secondary_opts):
                if flag.startswith("--"):
                    names[flag[2:]] = param.name
    return names
