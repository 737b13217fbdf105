"""One task over one batch with every guard: fallback ladder, output reading, findings.

`run_guarded_task` is how a pipeline runs a task over a batch. It
takes a `generate(decoding, indices)` callable rather than a model, so the
same code runs on a real model (`model_generate_fn`), under Ray, or on the
test mock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from omni_caption.model import AutWindows, GenerationResult, OmniModel, Prompt
from omni_caption.model.batch_sizing import run_halving_on_oom
from omni_caption.model.decode_runtime import DecodeRuntime
from omni_caption.model.generation import generate_rows, prepare_rows
from omni_caption.model.row_batch import Row

from . import guards
from .fallback import DEFAULT_LADDER, FallbackLadder, FallbackOutcome, GenerateFn, Verdict, generate_with_fallback
from .tasks import TaskConfig, TaskOutput, guarded_text, read_output

# The column each task's guarded text lands in (reasoning is judged on its whole text, trace included).
_TEXT_COLUMN = {"caption": "caption", "transcript": "transcript"}


def repetition_judge(task: TaskConfig, options: guards.GuardOptions = guards.DEFAULT_OPTIONS):
    """The ladder's judge: does this result loop? Measured on the text the guards will see."""

    def judge(result: GenerationResult) -> Verdict:
        found = guards.repetition_guard(guards.GuardInput(task.name, guarded_text(task, result)), options)
        ratio = found.scores.get(guards.score_name(task.name, "compression_ratio"), 0.0)
        return Verdict(failed=bool(found.flags) or result.loop_stopped, compression_ratio=ratio)

    return judge


def run_guarded_task(generate: GenerateFn, task: TaskConfig, contexts: Sequence[guards.SegmentContext],
                     options: guards.GuardOptions = guards.DEFAULT_OPTIONS,
                     ladder: FallbackLadder = DEFAULT_LADDER) -> list[TaskOutput]:
    """Decode the batch (one context per segment, in batch order), retry loops, keep the best, guard it."""
    outcomes = generate_with_fallback(generate, task.decoding(), len(contexts), repetition_judge(task, options),
                                      ladder)
    return [guard_outcome(task, outcome, context, options) for outcome, context in zip(outcomes, contexts)]


def guard_outcome(task: TaskConfig, outcome: FallbackOutcome, context: guards.SegmentContext,
                  options: guards.GuardOptions = guards.DEFAULT_OPTIONS) -> TaskOutput:
    """The kept attempt's columns, with every guard's flags and scores, and the raw text a guard replaced."""
    result = outcome.result
    out = read_output(task, result)  # truncation and empty are flagged there
    if task.name == "transcript":
        context = replace(context, language=out.columns.get("language") or context.language)
    item = guards.GuardInput(task.name, guarded_text(task, result), context, result.num_tokens,
                             result.hit_token_cap)
    report = guards.check(item, options, model_guards=(guards.repetition_guard,))
    loop_flags = guards.loop_stop_flags(task.name) if result.loop_stopped else ()
    out.flags.extend(f for f in report.flags + loop_flags if f not in out.flags)
    out.scores.update(report.scores)
    column = _TEXT_COLUMN.get(task.name)
    if report.raw_text is not None and column is not None:
        out.raw[column] = result.text
        out.columns[column] = report.text
    out.scores[f"{task.name}_temperature"] = outcome.kept.temperature
    if outcome.fell_back:
        out.flags.append(f"fallback:{task.name}")
    return out


def model_generate_fn(omni: OmniModel, prompt: Prompt, audios: Sequence[np.ndarray] | None,
                      windows: AutWindows | None = None, runtime: DecodeRuntime | None = None,
                      rows: Sequence[Row] | None = None) -> GenerateFn:
    """A GenerateFn over a loaded model: a retry decodes only its segments (and their AuT windows).

    Each clip is tokenised for `prompt` once and every attempt reuses it (fallback retries, OOM halves);
    `rows` are those tokenised inputs when the caller prepared them ahead (in input order; `audios` may
    then be None, so a batch prepared ahead holds its features but not its waveforms too).
    With a `runtime`, its decoder runs the batch, and running out of GPU memory halves the batch and
    retries both halves (results stay in order, none is lost) and lowers the stage's batch limit.
    """
    tokenised: dict[int, Row] = dict(enumerate(rows)) if rows is not None else {}

    def rows_of(indices) -> list[Row]:
        missing = [i for i in indices if i not in tokenised]
        if missing:
            tokenised.update(zip(missing, prepare_rows(omni, [audios[i] for i in missing], prompt)))
        return [tokenised[i] for i in indices]

    def generate_part(decoding, indices):
        subset = windows.for_clips(indices) if windows is not None else None
        return generate_rows(omni, rows_of(indices), decoding, subset,
                             decoder=runtime.decoder if runtime is not None else None,
                             slots=runtime.limit.size if runtime is not None else None)

    def generate(decoding, indices):
        if runtime is None:
            return generate_part(decoding, indices)
        return run_halving_on_oom(lambda part: generate_part(decoding, part), indices, runtime.limit,
                                  runtime.free_after_oom, runtime.in_flight)

    return generate
