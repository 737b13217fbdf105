"""The per-segment tasks: what each asks the model, how it decodes, how its text is read back."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field

import numpy as np

from omni_caption.model import AutWindows, DecodingOptions, GenerationResult, OmniModel, Prompt, generate_batch

from . import prompts

SEGMENT_TASKS = ("caption", "transcript", "reasoning")

DEFAULT_PRESET = {"caption": "captioner", "transcript": "instruct", "reasoning": "thinking"}

# Explicit caps: the library default (1024) would truncate long captions and traces silently.
DEFAULT_MAX_NEW_TOKENS = {"caption": 2048, "transcript": 1024, "reasoning": 4096}
# Random weights rarely emit end-of-turn; a short cap keeps the offline demo quick.
TINY_RANDOM_MAX_NEW_TOKENS = 32

# Model-card decoding: the Captioner samples, ASR is greedy.
CAPTION_SAMPLING = dict(do_sample=True, temperature=0.6, top_p=0.95, top_k=20)


@dataclass(frozen=True)
class TaskConfig:
    """Everything that changes a task's output; its hash is the resume key with the file hash."""

    name: str
    model: str
    language: str | None = None
    question: str = prompts.REASONING_QUESTION
    max_new_tokens: int = 1024
    greedy: bool = False  # force greedy decoding (tests, parity checks)
    seed: int = 0
    segmentation: str = ""  # how segments are cut (granularity, chunk limit, AuT windows): other cuts, other rows

    def __post_init__(self):
        if self.name not in SEGMENT_TASKS:
            raise ValueError(f"unknown task {self.name!r}: choose from {', '.join(SEGMENT_TASKS)}")

    def prompt(self) -> Prompt:
        if self.name == "caption":
            return Prompt(text=prompts.CAPTION_TEXT)
        if self.name == "transcript":
            return Prompt(text=prompts.transcript_prompt(self.language))
        return Prompt(text=self.question)

    def decoding(self) -> DecodingOptions:
        sampling = CAPTION_SAMPLING if self.name == "caption" and not self.greedy else {}
        return DecodingOptions(max_new_tokens=self.max_new_tokens, seed=self.seed, **sampling)

    def config_hash(self) -> str:
        payload = {**asdict(self), "prompt": asdict(self.prompt()), "decoding": asdict(self.decoding()),
                   "prompt_version": prompts.PROMPT_VERSION}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class TaskOutput:
    """The columns one task fills for one segment."""

    columns: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)


def run_task(omni: OmniModel, task: TaskConfig, audios: list[np.ndarray],
             windows: AutWindows | None = None) -> list[TaskOutput]:
    results = generate_batch(omni, audios, task.prompt(), task.decoding(), windows)
    return [read_output(task, result) for result in results]


def read_output(task: TaskConfig, result: GenerationResult) -> TaskOutput:
    out = TaskOutput(scores={f"{task.name}_avg_logprob": result.mean_logprob,
                             f"{task.name}_tokens": result.num_tokens})
    if result.hit_token_cap:
        out.flags.append(f"truncated:{task.name}")
    if task.name == "caption":
        out.columns["caption"] = result.text
    elif task.name == "transcript":
        language, text = split_language_line(result.text) if task.language is None else (task.language, result.text)
        out.columns.update(transcript=text, language=language)
    else:
        reasoning, answer, problem = split_think(result.text)
        out.columns.update(reasoning=reasoning, answer=answer)
        if problem:
            out.flags.append(f"{problem}:reasoning")
    if not result.text.strip():
        out.flags.append(f"empty:{task.name}")
    return out


_LANGUAGE_LINE = re.compile(r"^\s*language\s*[:：]\s*([^\n]+?)\s*(?:\n|$)", re.IGNORECASE)


def split_language_line(text: str) -> tuple[str | None, str]:
    """'Language: German\\n<transcript>' -> ('German', transcript); unknown names are not stored."""
    match = _LANGUAGE_LINE.match(text)
    if not match:
        return None, text.strip()
    try:
        language = prompts.normalise_language(match.group(1))
    except ValueError:
        language = None
    return language, text[match.end():].strip()


def split_think(text: str) -> tuple[str | None, str | None, str | None]:
    """Split Thinking output into (reasoning, answer, problem flag or None)."""
    opened = text.find("<think>")
    closed = text.find("</think>")
    if closed >= 0:
        start = opened + len("<think>") if 0 <= opened < closed else 0
        return text[start:closed].strip(), text[closed + len("</think>"):].strip() or None, None
    if opened >= 0:  # cut off (or malformed) inside the trace: keep it, no answer
        return text[opened + len("<think>"):].strip(), None, "unclosed_think"
    return None, text.strip() or None, "no_think"
