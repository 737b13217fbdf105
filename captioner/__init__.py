"""Tasks, prompts, output reading, and the low-hallucination guards."""

from .fallback import DEFAULT_LADDER, FallbackLadder, FallbackOutcome, generate_with_fallback
from .guarded import model_generate_fn, run_guarded_task
from .guards import (DEFAULT_OPTIONS, GuardInput, GuardOptions, GuardReport, SegmentContext, check, check_batch,
                     with_agreement_flag)
from .prompts import PROMPT_VERSION, normalise_language
from .summary import (SegmentText, build_summary_source, plan_summary, run_summary_plan, run_summary_plans,
                      split_source, summary_shrinking_on_oom)
from .tasks import (
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_PRESET,
    RECORDING_TASKS,
    SEGMENT_TASKS,
    TASKS,
    TINY_RANDOM_MAX_NEW_TOKENS,
    TaskConfig,
    TaskOutput,
    read_output,
    split_language_line,
    split_think,
)

__all__ = [
    "DEFAULT_LADDER", "DEFAULT_MAX_NEW_TOKENS", "DEFAULT_OPTIONS", "DEFAULT_PRESET", "PROMPT_VERSION",
    "RECORDING_TASKS", "SEGMENT_TASKS", "TASKS", "TINY_RANDOM_MAX_NEW_TOKENS", "FallbackLadder", "FallbackOutcome", "GuardInput",
    "GuardOptions", "GuardReport", "SegmentContext", "SegmentText", "TaskConfig", "TaskOutput",
    "build_summary_source", "check", "check_batch", "generate_with_fallback", "model_generate_fn",
    "normalise_language", "plan_summary", "read_output", "run_guarded_task", "run_summary_plan",
    "run_summary_plans", "split_language_line", "split_source", "split_think", "summary_shrinking_on_oom",
    "with_agreement_flag",
]
