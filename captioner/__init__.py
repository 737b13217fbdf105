"""Tasks, prompts and output reading (guards arrive here too)."""

from .prompts import PROMPT_VERSION, normalise_language
from .tasks import (
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_PRESET,
    SEGMENT_TASKS,
    TINY_RANDOM_MAX_NEW_TOKENS,
    TaskConfig,
    TaskOutput,
    read_output,
    run_task,
    split_language_line,
    split_think,
)

__all__ = [
    "DEFAULT_MAX_NEW_TOKENS", "DEFAULT_PRESET", "PROMPT_VERSION", "SEGMENT_TASKS", "TINY_RANDOM_MAX_NEW_TOKENS",
    "TaskConfig", "TaskOutput", "normalise_language", "read_output", "run_task", "split_language_line",
    "split_think",
]
