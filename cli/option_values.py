"""Option values checked as click reads them, so a bad one is a usage error (exit 2) naming its flag, by the rule
the library holds a program to where there is one (pipelines.options, model.loading)."""

from __future__ import annotations

import click


def parse_aut_window(value):
    if value is None:
        return value
    from omni_caption.pipelines.options import parse_aut_window as aut_window_rule  # RunOptions' own rule

    try:
        return aut_window_rule(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def parse_device(value: str) -> str:
    if value == "auto":
        return value
    from omni_caption.model.hub import ModelLoadError
    from omni_caption.model.loading import check_device_name

    try:
        check_device_name(value)
    except ModelLoadError:
        raise click.BadParameter(f"{value!r}: choose auto, cpu, cuda or cuda:N") from None
    return value


def parse_batch_size(value):
    text = str(value).strip().lower()
    if text == "auto":
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise click.BadParameter(f"{value!r}: give a number >= 1 or 'auto'")


def parse_loop_stop_tokens(value: int) -> int:
    if value == 0 or value >= 2:
        return value
    raise click.BadParameter(f"{value}: give 0 (never stop a loop) or a number of tokens >= 2")
