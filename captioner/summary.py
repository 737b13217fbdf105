"""Recording summaries from text: the source, its split under a budget, and a map-reduce over model calls.

The default summary source is the recording's segment captions and
transcripts, in time order, one timestamped line per segment:

    [00:01:05–00:01:30] caption: A man speaks over rain. / transcript: We leave at dawn.

Text has no length limit, unlike audio (about 40 min per call). A source too
long for one call is split at line boundaries into pieces under a token
budget. Each piece gets a partial summary (map, one batched call), and the
partials are combined (reduce), level by level, until one summary is left.
The model call is a parameter, `summarise(prompts) -> results`, so this module
needs no model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from omni_caption.model import GenerationResult

from .guards import loop_stop_flags
from .speech_rate import syllabic_count
from .tasks import split_think
from .text_stats import has_words

from .prompts import SUMMARY_PART_TEXT, SUMMARY_REDUCE_TEXT, SUMMARY_TEXT

# Source tokens per call: room is left in a 32k context for the prompt and a 4k-token answer with its trace.
DEFAULT_MAX_SOURCE_TOKENS = 16_000
MIN_MAX_TOKENS = 32


@dataclass(frozen=True)
class SegmentText:
    """One segment's text for the summary source."""

    start_s: float
    end_s: float
    caption: str | None = None
    transcript: str | None = None
    speaker: str | None = None


@dataclass(frozen=True)
class SourceLine:
    start_s: float
    end_s: float
    text: str  # the whole line, timestamp tag included


def format_timestamp(seconds: float) -> str:
    """HH:MM:SS, rounded down to the second (hours always shown: recordings run long)."""
    total = max(0, int(math.floor(seconds + 1e-6)))
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def format_span(start_s: float, end_s: float) -> str:
    return f"{format_timestamp(start_s)}–{format_timestamp(end_s)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def source_line(segment: SegmentText) -> SourceLine | None:
    """The segment as one line, or None when it has no caption or transcript with words."""
    parts = [f"{name}: {_one_line(text)}" for name, text in (("caption", segment.caption),
                                                             ("transcript", segment.transcript))
             if has_words(text)]
    if not parts:
        return None
    speaker = f" ({segment.speaker})" if segment.speaker else ""
    text = f"[{format_span(segment.start_s, segment.end_s)}]{speaker} " + " / ".join(parts)
    return SourceLine(segment.start_s, segment.end_s, text)


def source_lines(segments: Sequence[SegmentText]) -> list[SourceLine]:
    ordered = sorted(segments, key=lambda s: (s.start_s, s.end_s))
    return [line for line in map(source_line, ordered) if line is not None]


def build_summary_source(segments: Sequence[SegmentText]) -> str:
    """The default summary source: one timestamped line per segment with words, in time order."""
    return "\n".join(line.text for line in source_lines(segments))


def estimate_tokens(text: str) -> int:
    """An over-estimate of Qwen tokens, for budgets: 1 per CJK/Hangul character, 1 per 3 other characters.

    Qwen's tokenizer takes about 4 characters of English and 1.3 of Chinese per
    token. Erring high makes pieces smaller than they could be, never too long;
    and the estimate of joined texts is at most the sum of theirs, so packing by
    sums stays under the budget.
    """
    syllabic = syllabic_count(text)
    return syllabic + math.ceil((len(text) - syllabic) / 3)


TokenCounter = Callable[[str], int]


def _cut_line(line: SourceLine, max_tokens: int, count_tokens: TokenCounter) -> list[SourceLine]:
    """A line over the budget, cut into pieces that each repeat its timestamp tag.

    Each piece is the longest run of the rest that fits, cut back to its last
    space when one is in its second half. Text without spaces there (CJK, or
    one huge word) is cut between characters.
    """
    tag_end = line.text.index("]") + 1
    tag, rest = line.text[:tag_end], line.text[tag_end:].strip()
    pieces: list[str] = []
    while rest:
        head = f"{tag} (cont.) " if pieces else f"{tag} "

        def fits(n: int) -> bool:
            return count_tokens(head + rest[:n]) <= max_tokens

        n = len(rest)
        if not fits(n):
            lo, hi = 1, n - 1  # the longest prefix that fits; at least one character
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
            n = lo
            # Back to the last space, unless that gives up more than half the piece (CJK after a label).
            space = rest.rfind(" ", 0, n + 1)
            n = space if space > n // 2 else n
        pieces.append(head + rest[:n].strip())
        rest = rest[n:].strip()
    return [SourceLine(line.start_s, line.end_s, text) for text in pieces]


@dataclass(frozen=True)
class SourcePiece:
    """Consecutive lines that fit one call."""

    lines: tuple[SourceLine, ...]

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def start_s(self) -> float:
        return self.lines[0].start_s

    @property
    def end_s(self) -> float:
        return max(line.end_s for line in self.lines)


def split_source(lines: Sequence[SourceLine], max_tokens: int = DEFAULT_MAX_SOURCE_TOKENS,
                 count_tokens: TokenCounter = estimate_tokens) -> list[SourcePiece]:
    """Pack lines, in order, into pieces of at most `max_tokens`; a line longer than that is cut.

    Lines are never reordered or dropped, so joining the pieces gives back the
    source (less the cut marks).
    """
    if max_tokens < MIN_MAX_TOKENS:
        raise ValueError(f"max_tokens must be at least {MIN_MAX_TOKENS}, room for a timestamp tag and some text")
    pieces: list[SourcePiece] = []
    current: list[SourceLine] = []
    used = 0
    for line in lines:
        parts = [line] if count_tokens(line.text) <= max_tokens else _cut_line(line, max_tokens, count_tokens)
        for part in parts:
            cost = count_tokens(part.text) + (1 if current else 0)  # the newline
            if current and used + cost > max_tokens:
                pieces.append(SourcePiece(tuple(current)))
                current, used = [], 0
                cost = count_tokens(part.text)
            current.append(part)
            used += cost
    if current:
        pieces.append(SourcePiece(tuple(current)))
    return pieces


@dataclass(frozen=True)
class SummaryPlan:
    """The map step's prompts, one per piece; a single piece is the whole summary in one call."""

    pieces: tuple[SourcePiece, ...]

    @property
    def single_call(self) -> bool:
        return len(self.pieces) == 1

    def map_prompts(self) -> list[str]:
        if self.single_call:
            return [SUMMARY_TEXT.format(source=self.pieces[0].text)]
        return [SUMMARY_PART_TEXT.format(part=i + 1, parts=len(self.pieces), span=format_span(p.start_s, p.end_s),
                                         source=p.text) for i, p in enumerate(self.pieces)]


def plan_summary(segments: Sequence[SegmentText], max_tokens: int = DEFAULT_MAX_SOURCE_TOKENS,
                 count_tokens: TokenCounter = estimate_tokens) -> SummaryPlan | None:
    """None when no segment has any text: there is nothing to summarise (no call is made)."""
    lines = source_lines(segments)
    return SummaryPlan(tuple(split_source(lines, max_tokens, count_tokens))) if lines else None


@dataclass(frozen=True)
class SummaryResult:
    summary: str | None
    reasoning: str | None  # the final call's <think> trace
    flags: tuple[str, ...]
    calls_per_round: tuple[int, ...]  # prompts of this recording in the map round, then each reduce round


# summarise(prompts) -> one Thinking result per prompt, in order (one batched call).
Summarise = Callable[[list[str]], list[GenerationResult]]


def _group_partials(partials: list[SourceLine], max_tokens: int, count_tokens: TokenCounter) -> list[list[SourceLine]]:
    """Whole partials packed under the budget, at least two per group so every round shrinks."""
    groups: list[list[SourceLine]] = []
    current: list[SourceLine] = []
    used = 0
    for partial in partials:
        cost = count_tokens(partial.text) + 1
        if len(current) >= 2 and used + cost > max_tokens:
            groups.append(current)
            current, used = [], 0
        current.append(partial)
        used += cost
    if len(current) == 1 and groups:
        groups[-1].append(current[0])  # a lone last partial joins the group before it
    elif current:
        groups.append(current)
    return groups


@dataclass
class _Progress:
    """One recording's state between rounds."""

    results: list[GenerationResult]
    spans: list[tuple[float, float]]
    calls: list[int]
    cut: set[str] = field(default_factory=set)  # why any call of it was cut short (cut_flags)


def run_summary_plans(plans: Sequence[SummaryPlan], summarise: Summarise,
                      max_tokens: int = DEFAULT_MAX_SOURCE_TOKENS,
                      count_tokens: TokenCounter = estimate_tokens) -> list[SummaryResult]:
    """Summarise many recordings in lockstep: each round is one `summarise` call over all their prompts.

    Round 1 maps every piece of every plan; each later round reduces the
    partials of the plans that still have more than one, until all have one.
    """
    states: list[_Progress | None] = [None] * len(plans)
    prompts = [(i, prompt) for i, plan in enumerate(plans) for prompt in plan.map_prompts()]
    spans = {i: [(p.start_s, p.end_s) for p in plan.pieces] for i, plan in enumerate(plans)}
    while prompts:
        results = summarise([prompt for _, prompt in prompts])
        if len(results) != len(prompts):
            raise ValueError(f"summarise returned {len(results)} results for {len(prompts)} prompts")
        by_plan: dict[int, list[GenerationResult]] = {}
        for (i, _), result in zip(prompts, results):
            by_plan.setdefault(i, []).append(result)
        prompts = []
        for i, plan_results in by_plan.items():
            state = states[i] or _Progress([], spans[i], [])
            states[i] = state
            state.results = plan_results
            state.calls.append(len(plan_results))
            state.cut |= cut_flags(plan_results)
            if len(plan_results) == 1:
                continue
            partials = [SourceLine(start, end, f"[{format_span(start, end)}] {partial_answer(result)}")
                        for (start, end), result in zip(state.spans, plan_results)]
            groups = _group_partials(partials, max_tokens, count_tokens)
            state.spans = [(group[0].start_s, group[-1].end_s) for group in groups]
            prompts += [(i, SUMMARY_REDUCE_TEXT.format(source="\n".join(p.text for p in group))) for group in groups]
    return [_final(state) for state in states]


def run_summary_plan(plan: SummaryPlan, summarise: Summarise, max_tokens: int = DEFAULT_MAX_SOURCE_TOKENS,
                     count_tokens: TokenCounter = estimate_tokens) -> SummaryResult:
    """One recording: map every piece (one batched call), then reduce the partials until one is left."""
    return run_summary_plans([plan], summarise, max_tokens, count_tokens)[0]


def summary_shrinking_on_oom(segments: Sequence[SegmentText], summarise: Summarise,
                             is_out_of_memory: Callable[[BaseException], bool], on_oom: Callable[[], None],
                             max_tokens: int = DEFAULT_MAX_SOURCE_TOKENS,
                             count_tokens: TokenCounter = estimate_tokens) -> SummaryResult | str:
    """One recording's summary when one of its prompts ran out of memory even alone (`summarise` re-raised):
    the source is split again into pieces at most half as long as the largest that failed, so there are
    more calls and reduce rounds but each is smaller, until every call fits.

    Returns the one-line error when pieces of MIN_MAX_TOKENS still do not fit. `segments` must have words
    (plan_summary is not None).
    """
    while True:
        plan = plan_summary(segments, max_tokens, count_tokens)
        if plan is None:
            raise ValueError("no segment has words: there is nothing to summarise")
        try:
            return run_summary_plans([plan], summarise, max_tokens, count_tokens)[0]
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
        on_oom()
        if max_tokens <= MIN_MAX_TOKENS:
            return (f"CUDA out of memory summarising even {max_tokens}-token pieces of captions one call at a "
                    "time; free GPU memory or use a smaller --summary-model")
        largest = max(count_tokens(piece.text) for piece in plan.pieces)
        max_tokens = max(MIN_MAX_TOKENS, min(max_tokens, largest) // 2)


def _final(state: _Progress) -> SummaryResult:
    return final_summary(state.results[0], state.cut, tuple(state.calls))


def cut_flags(results: Sequence[GenerationResult]) -> set[str]:
    """The summary's flags for calls cut short: at the token cap, or where their text began to loop."""
    flags = {"truncated:summary"} if any(r.hit_token_cap for r in results) else set()
    return flags | (set(loop_stop_flags("summary")) if any(r.loop_stopped for r in results) else set())


def final_summary(result: GenerationResult, cut: Collection[str] = (),
                  calls_per_round: tuple[int, ...] = ()) -> SummaryResult:
    """The last call's answer and trace, flagged; `cut`: the `cut_flags` of every call of this summary."""
    reasoning, answer, problem = split_think(result.text)
    flags = [f"{problem}:summary"] if problem else []
    flags += sorted(cut)
    if not has_words(answer):
        flags.append("empty:summary")
    return SummaryResult(summary=answer, reasoning=reasoning, flags=tuple(flags), calls_per_round=calls_per_round)


def partial_answer(result: GenerationResult) -> str:
    """A partial summary's answer (its trace is not passed on); the whole text when no answer was split off."""
    _, answer, _ = split_think(result.text)
    return _one_line(answer or result.text)
