"""Low-hallucination guards: findings about one task's text for one segment.

Every guard is a pure function `(GuardInput, GuardOptions) -> Findings`, so a
batch is a list comprehension and Ray can map them. A guard never deletes a
row. It adds flags in the `kind:task` style and figures for the `scores`
struct. When it changes the text (only the speech-in-silence guard does), the
model's own text comes back as `raw_text`, so the caller can store it beside
the cleaned one.

Flags:
- `repetition:<task>`: a decoding loop (compression ratio or a repeated n-gram).
- `speech_in_silence:transcript`: words where the VAD heard no speech; the
  transcript is emptied.
- `rate:transcript`: characters per second of speech outside the language's bounds.
- `truncated:<task>`: the token cap was hit.
- `empty:<task>`: no letters or digits at all.
- `caption_quotes_unheard_speech:caption`: the caption quotes words the
  transcript of the same segment lacks.
- `fallback:<task>` (added by `guarded.run_guarded_task`, not a guard here): the
  kept text comes from a retry at a higher temperature.
- `loop_stopped:<task>` (added there too, with `repetition:<task>`): decoding
  stopped a loop (model/loop_stop.py); the text keeps its first copies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from . import speech_rate, text_stats


@dataclass(frozen=True)
class SegmentContext:
    """What is known about the segment besides the text being judged."""

    duration_s: float | None = None
    speech_ratio: float | None = None  # VAD share of speech; None when VAD did not run
    language: str | None = None  # given with --language or detected by the model
    caption: str | None = None  # the same segment's caption, when the caption task ran
    transcript: str | None = None  # the same segment's (cleaned) transcript, when the transcript task ran

    @property
    def speech_s(self) -> float | None:
        """Seconds of speech: VAD speech when known, else the whole segment."""
        if self.duration_s is None:
            return None
        return self.duration_s * self.speech_ratio if self.speech_ratio is not None else self.duration_s


@dataclass(frozen=True)
class GuardInput:
    """One task's output text for one segment, with its generation facts and the segment's context."""

    task: str
    text: str | None
    context: SegmentContext = field(default_factory=SegmentContext)
    num_tokens: int | None = None
    hit_token_cap: bool = False


@dataclass(frozen=True)
class GuardOptions:
    # Repetition: Whisper's threshold, on windows of about 30 s of speech (see text_stats).
    compression_ratio_threshold: float = 2.4
    compression_window_chars: int = 200
    # Repetition: a unit of 1..50 tokens repeated back to back >= 4 times over >= 16 tokens.
    loop_max_unit_tokens: int = 50
    loop_min_repeats: float = 4.0
    loop_min_tokens: int = 16
    # Speech in silence: less VAD speech than silero's shortest region (250 ms) means none was heard.
    silence_max_speech_s: float = 0.2
    # Rate: seconds of speech are floored here, so one short word cannot make an absurd rate.
    rate_min_denominator_s: float = 1.0
    # Rate: the lower bound only counts with this much VAD speech (short spans are noisy).
    rate_min_speech_s_for_lower: float = 3.0
    rate_bounds: Mapping[str, speech_rate.RateBounds] = field(default_factory=lambda: speech_rate.RATE_BOUNDS)
    # Agreement: quotes shorter than this are names or sound words ("whoosh"), not quoted speech.
    quote_min_tokens: int = 3
    # Agreement: a quote is heard when this share of its token bigrams is in the transcript.
    quote_min_bigram_share: float = 0.5


DEFAULT_OPTIONS = GuardOptions()


@dataclass(frozen=True)
class Findings:
    flags: tuple[str, ...] = ()
    scores: dict = field(default_factory=dict)
    text: str | None = None  # replacement text, when the guard changes it
    changed: bool = False


@dataclass(frozen=True)
class GuardReport:
    """All findings for one GuardInput: the text to store, the model's text when it differs, flags, scores."""

    text: str | None
    raw_text: str | None  # set only when a guard changed the text
    flags: tuple[str, ...]
    scores: dict


Guard = Callable[[GuardInput, GuardOptions], Findings]


def score_name(task: str, figure: str) -> str:
    """Transcript figures use the schema's bare names (`compression_ratio`, `chars_per_s`); others are prefixed."""
    return figure if task == "transcript" else f"{task}_{figure}"


# ---------------------------------------------------------------- the guards


def repetition_guard(item: GuardInput, options: GuardOptions = DEFAULT_OPTIONS) -> Findings:
    """Flag a decoding loop: windowed compression ratio above the threshold, or a repeated n-gram run."""
    text = item.text or ""
    if not text_stats.has_words(text):
        return Findings()
    ratio = text_stats.windowed_compression_ratio(text, options.compression_window_chars)
    loop = text_stats.find_loop(text_stats.tokens(text), options.loop_max_unit_tokens,
                                options.loop_min_repeats, options.loop_min_tokens)
    flags = (f"repetition:{item.task}",) if ratio > options.compression_ratio_threshold or loop else ()
    return Findings(flags=flags, scores={score_name(item.task, "compression_ratio"): round(ratio, 4)})


def loop_stop_flags(task: str) -> tuple[str, ...]:
    """The flags of a text whose decoding loop was stopped (model/loop_stop.py): a loop, even where its kept
    copies are too few for `repetition_guard`."""
    return f"repetition:{task}", f"loop_stopped:{task}"


def is_repetitive(text: str | None, options: GuardOptions = DEFAULT_OPTIONS) -> bool:
    return bool(repetition_guard(GuardInput("any", text), options).flags)


def silence_guard(item: GuardInput, options: GuardOptions = DEFAULT_OPTIONS) -> Findings:
    """Transcript words where the VAD heard no speech: empty the transcript and flag it.

    Only transcripts: a caption may well describe the sounds of a silent stretch.
    Without VAD (speech_ratio None) there is nothing to compare against.
    """
    ctx = item.context
    if item.task != "transcript" or ctx.speech_ratio is None or ctx.duration_s is None:
        return Findings()
    if ctx.speech_s >= options.silence_max_speech_s or not text_stats.has_words(item.text):
        return Findings()
    return Findings(flags=("speech_in_silence:transcript",), text="", changed=True)


def rate_guard(item: GuardInput, options: GuardOptions = DEFAULT_OPTIONS) -> Findings:
    """Characters per second of speech outside the language's bounds (transcripts only).

    The upper bound always applies. The lower bound applies only when the VAD ran
    and heard at least `rate_min_speech_s_for_lower` seconds. Without VAD the
    segment may be mostly silence, and a few seconds of speech measure too little.
    """
    ctx = item.context
    if item.task != "transcript" or ctx.duration_s is None or not text_stats.has_words(item.text):
        return Findings()
    speech_s = ctx.speech_s
    rate = text_stats.spoken_chars(item.text) / max(speech_s, options.rate_min_denominator_s)
    bounds = speech_rate.bounds_for(ctx.language, item.text, options.rate_bounds)
    check_min = ctx.speech_ratio is not None and speech_s >= options.rate_min_speech_s_for_lower
    flags = () if bounds.contains(rate, check_min) else ("rate:transcript",)
    return Findings(flags=flags, scores={score_name(item.task, "chars_per_s"): round(rate, 3)})


def truncation_guard(item: GuardInput, options: GuardOptions = DEFAULT_OPTIONS) -> Findings:
    """The token cap was hit: the text is cut off. The token count goes to scores."""
    scores = {f"{item.task}_tokens": item.num_tokens} if item.num_tokens is not None else {}
    return Findings(flags=(f"truncated:{item.task}",) if item.hit_token_cap else (), scores=scores)


def empty_guard(item: GuardInput, options: GuardOptions = DEFAULT_OPTIONS) -> Findings:
    """No letters or digits: '', whitespace or punctuation only."""
    return Findings() if text_stats.has_words(item.text) else Findings(flags=(f"empty:{item.task}",))


# Paired quote marks that enclose quoted speech. Straight and curly single quotes
# are left out: they double as apostrophes ("don't", "the dog's").
_QUOTES = re.compile(r'"([^"]+)"|“([^”]+)”|„([^“”]+)[“”]|«([^»]+)»|「([^」]+)」|『([^』]+)』')


def quoted_spans(caption: str) -> list[str]:
    return [next(g for g in match.groups() if g is not None) for match in _QUOTES.finditer(caption)]


def _bigrams(toks: list[str]) -> set[tuple[str, str]]:
    return set(zip(toks, toks[1:]))


def unheard_quotes(caption: str, transcript: str, options: GuardOptions = DEFAULT_OPTIONS) -> list[str]:
    """Quotes in the caption (>= `quote_min_tokens` tokens) whose token bigrams are mostly not in the transcript.

    Tokens are words, or single characters in CJK text, after casefolding and
    with punctuation dropped. Bigrams rather than single words, so that common
    words ("the", "to") alone do not count as agreement; a share rather than all
    of them, so that ASR and caption may spell a word differently.
    """
    heard = _bigrams(text_stats.tokens(transcript))
    out = []
    for quote in quoted_spans(caption):
        toks = text_stats.tokens(quote)
        if len(toks) < options.quote_min_tokens:
            continue
        grams = _bigrams(toks)
        if len(grams & heard) / len(grams) < options.quote_min_bigram_share:
            out.append(quote)
    return out


AGREEMENT_FLAG = "caption_quotes_unheard_speech:caption"


def agreement_guard(item: GuardInput, options: GuardOptions = DEFAULT_OPTIONS) -> Findings:
    """A caption quoting speech that the same segment's transcript lacks.

    Runs only when both exist: the item is a caption and the context holds the
    transcript (an emptied transcript counts: the VAD heard no speech to quote).
    """
    transcript = item.context.transcript
    if item.task != "caption" or transcript is None or not item.text:
        return Findings()
    return Findings(flags=(AGREEMENT_FLAG,)) if unheard_quotes(item.text, transcript, options) else Findings()


# ---------------------------------------------------------------- running them

# Guards about what the model produced: they see its text even after a guard changed it
# (a loop stays a loop, and an emptied transcript was not an empty output).
MODEL_TEXT_GUARDS: tuple[Guard, ...] = (repetition_guard, truncation_guard, empty_guard)
# Guards about the text that is kept, in order: each sees the text as the previous left it,
# so an emptied transcript gets no rate flag.
KEPT_TEXT_GUARDS: tuple[Guard, ...] = (silence_guard, rate_guard, agreement_guard)


def check(item: GuardInput, options: GuardOptions = DEFAULT_OPTIONS,
          model_guards: Sequence[Guard] = MODEL_TEXT_GUARDS,
          kept_guards: Sequence[Guard] = KEPT_TEXT_GUARDS) -> GuardReport:
    """Run every guard on one task output; flags keep guard order, without duplicates."""
    flags: list[str] = []
    scores: dict = {}

    def take(found: Findings) -> None:
        flags.extend(f for f in found.flags if f not in flags)
        scores.update(found.scores)

    for guard in model_guards:
        take(guard(item, options))
    current = item
    for guard in kept_guards:
        found = guard(current, options)
        take(found)
        if found.changed:
            current = replace(current, text=found.text)
    changed = current.text != item.text
    return GuardReport(text=current.text, raw_text=item.text if changed else None, flags=tuple(flags),
                       scores=scores)


def check_batch(items: Sequence[GuardInput], options: GuardOptions = DEFAULT_OPTIONS) -> list[GuardReport]:
    return [check(item, options) for item in items]


def with_agreement_flag(flags: Sequence[str], caption: str | None, transcript: str | None,
                        options: GuardOptions = DEFAULT_OPTIONS) -> tuple[str, ...]:
    """A merged row's flags with the agreement flag recomputed: idempotent, so safe on every merge."""
    kept = [f for f in flags if f != AGREEMENT_FLAG]
    found = agreement_guard(GuardInput("caption", caption, SegmentContext(transcript=transcript)), options)
    return tuple(sorted(set(kept) | set(found.flags)))
