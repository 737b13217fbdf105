"""The per-segment tasks: what each asks the model, how it decodes, how its text is read back."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field

from omni_caption.model import DecodingOptions, GenerationResult, Prompt
from omni_caption.model.loop_stop import LoopStop
from omni_caption.model.families import FAMILIES, UnsupportedFeatureError
from omni_caption.schemas.segment_table import TASKS

from . import guards, prompts

RECORDING_TASKS = ("summary",)
SEGMENT_TASKS = tuple(task for task in TASKS if task not in RECORDING_TASKS)  # the schema's columns name them all

DEFAULT_PRESET = {"caption": "captioner", "transcript": "instruct", "reasoning": "thinking", "summary": "thinking"}

# Explicit caps: the library default (1024) would truncate long captions and traces silently.
DEFAULT_MAX_NEW_TOKENS = {"caption": 2048, "transcript": 1024, "reasoning": 4096, "summary": 4096}
# Random weights rarely emit end-of-turn; a short cap keeps the offline demo quick.
TINY_RANDOM_MAX_NEW_TOKENS = 32

# A loop is stopped once one unit has repeated over this many tokens (model/loop_stop.py); 0: never.
DEFAULT_LOOP_STOP_TOKENS = LoopStop.min_tokens

# Model-card decoding: the Captioner samples, ASR is greedy.
CAPTION_SAMPLING = dict(do_sample=True, temperature=0.6, top_p=0.95, top_k=20)


def check_loop_stop_tokens(tokens: int) -> None:
    """0 (a loop runs to the cap) or a whole number >= 2 (one token repeated twice is no loop yet)."""
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0 or tokens == 1:
        raise ValueError(f"loop_stop_tokens must be 0 (never stop a loop) or >= 2, not {tokens!r}")


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
    summary_from: str = "text"  # summary: from the segments' captions/transcripts, or from the audio itself
    family: str = "qwen3-omni"  # the model's family (model.families): its prompts differ where it lacks a variant
    loop_stop_tokens: int = DEFAULT_LOOP_STOP_TOKENS  # a decoding loop stops after this many tokens; 0: at the cap

    def __post_init__(self):
        if self.name not in TASKS:
            raise ValueError(f"unknown task {self.name!r}: choose from {', '.join(TASKS)}")
        check_loop_stop_tokens(self.loop_stop_tokens)
        if self.summary_from not in ("text", "audio"):
            raise ValueError(f"summary source must be 'text' or 'audio', not {self.summary_from!r}")
        check_task_fits(self.name, self.family, self.model)

    @property
    def prompt_version(self) -> str:
        return prompts.prompt_version(self.family)

    def prompt(self) -> Prompt:
        if self.name == "caption":
            return Prompt(text=prompts.caption_text(self.family))
        if self.name == "transcript":
            return Prompt(text=prompts.transcript_prompt(self.language))
        if self.name == "summary":
            return Prompt(text=prompts.SUMMARY_AUDIO_TEXT if self.summary_from == "audio" else prompts.SUMMARY_TEXT)
        return Prompt(text=self.question)

    def decoding(self) -> DecodingOptions:
        sampling = CAPTION_SAMPLING if self.name == "caption" and not self.greedy else {}
        loop_stop = LoopStop(min_tokens=self.loop_stop_tokens) if self.loop_stop_tokens else None
        return DecodingOptions(max_new_tokens=self.max_new_tokens, seed=self.seed, loop_stop=loop_stop, **sampling)

    def config_hash(self) -> str:
        # Guards and the fallback ladder change stored text, so their settings are part of the key.
        from .fallback import DEFAULT_LADDER

        # The family acts through the prompt and its version (both below); leaving the field itself out keeps
        # the hashes of datasets made before families existed. With loops left to run, so does the loop stop's.
        fields = {k: v for k, v in asdict(self).items()
                  if k != "family" and not (k == "loop_stop_tokens" and v == 0)}
        decoding = {k: v for k, v in asdict(self.decoding()).items() if not (k == "loop_stop" and v is None)}
        payload = {**fields, "prompt": asdict(self.prompt()), "decoding": decoding,
                   "prompt_version": self.prompt_version, "guards": repr(guards.DEFAULT_OPTIONS),
                   "ladder": asdict(DEFAULT_LADDER)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def check_task_fits(task: str, family_name: str, model: str = "") -> None:
    """Refuse, in one line that names the alternative, a task the family has no fitting model for."""
    family = FAMILIES[family_name]
    if task == "reasoning" and not family.has_thinking:
        raise UnsupportedFeatureError(
            f"reasoning traces need a Thinking model, and {family.title} has none (--model {model or '?'}): use "
            f"--reasoning-model thinking (Qwen3-Omni-30B-A3B-Thinking), or drop reasoning from --tasks")


@dataclass
class TaskOutput:
    """The columns one task fills for one segment."""

    columns: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    raw: dict = field(default_factory=dict)  # column -> the model's text, where a guard changed the column


def read_output(task: TaskConfig, result: GenerationResult) -> TaskOutput:
    """Columns from the model text, with the guards that need no segment context (truncation, empty)."""
    out = TaskOutput(scores={f"{task.name}_avg_logprob": result.mean_logprob})
    item = guards.GuardInput(task.name, guarded_text(task, result), num_tokens=result.num_tokens,
                             hit_token_cap=result.hit_token_cap)
    truncated = guards.truncation_guard(item)
    out.flags.extend(truncated.flags)
    out.scores.update(truncated.scores)
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
    out.flags.extend(guards.empty_guard(item).flags)
    return out


def guarded_text(task: TaskConfig, result: GenerationResult) -> str:
    """The text the guards judge: the transcript without its 'Language:' line; otherwise the model text."""
    if task.name == "transcript" and task.language is None:
        return split_language_line(result.text)[1]
    return result.text


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
