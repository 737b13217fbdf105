"""A Whisper-style temperature fallback for decoding loops, batched.

The first pass decodes the whole batch with the task's own options. The
segments whose text loops are decoded again, together in one call, at the next
temperature of the ladder. Retries are capped in number (`max_retries`, 1 by
default) and in temperature (the ladder's last step). Each segment keeps its
best attempt:

1. an attempt that passes the judge beats one that fails;
2. then the lower compression ratio wins (the less looping text);
3. then the higher mean log-prob (log-probs are taken under the raw model
   distribution, so they compare across temperatures);
4. then the earlier attempt (the lower temperature, closer to the model card).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from omni_caption.model import DecodingOptions, GenerationResult

# generate(decoding, indices into the batch) -> one result per index, in order.
GenerateFn = Callable[[DecodingOptions, Sequence[int]], list[GenerationResult]]


@dataclass(frozen=True)
class Verdict:
    failed: bool
    compression_ratio: float = 0.0


Judge = Callable[[GenerationResult], Verdict]


@dataclass(frozen=True)
class FallbackLadder:
    """Whisper's temperatures. The last step is the cap; greedy decoding counts as temperature 0."""

    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    max_retries: int = 1

    def next_temperature(self, current: float) -> float | None:
        higher = [t for t in self.temperatures if t > current + 1e-9]
        return min(higher) if higher else None

    def next_decoding(self, decoding: DecodingOptions) -> DecodingOptions | None:
        """The options of the next rung, or None at the cap (the same temperature again would cost for nothing)."""
        current = decoding.temperature if decoding.do_sample else 0.0
        temperature = self.next_temperature(current)
        if temperature is None:
            return None
        # A sampling task keeps its nucleus; a greedy one samples plainly, as Whisper does.
        nucleus = {} if decoding.do_sample else {"top_p": 1.0, "top_k": 0}
        return replace(decoding, do_sample=True, temperature=temperature, seed=decoding.seed + 1, **nucleus)


DEFAULT_LADDER = FallbackLadder()


@dataclass(frozen=True)
class Attempt:
    result: GenerationResult
    decoding: DecodingOptions
    verdict: Verdict

    @property
    def temperature(self) -> float:
        return self.decoding.temperature if self.decoding.do_sample else 0.0


@dataclass(frozen=True)
class FallbackOutcome:
    attempts: tuple[Attempt, ...]
    best: int  # index of the kept attempt

    @property
    def kept(self) -> Attempt:
        return self.attempts[self.best]

    @property
    def result(self) -> GenerationResult:
        return self.kept.result

    @property
    def fell_back(self) -> bool:
        """The kept text comes from a retry, not from the task's own decoding."""
        return self.best > 0


def _rank(index: int, attempt: Attempt) -> tuple:
    logprob = attempt.result.mean_logprob
    return (attempt.verdict.failed, attempt.verdict.compression_ratio,
            -logprob if logprob is not None else math.inf, index)


def best_attempt(attempts: Sequence[Attempt]) -> int:
    return min(range(len(attempts)), key=lambda i: _rank(i, attempts[i]))


def generate_with_fallback(generate: GenerateFn, decoding: DecodingOptions, count: int, judge: Judge,
                           ladder: FallbackLadder = DEFAULT_LADDER) -> list[FallbackOutcome]:
    """Decode `count` segments; retry only those the judge fails, one batched call per rung."""
    if count == 0:
        return []
    attempts: list[list[Attempt]] = [[] for _ in range(count)]
    pending = list(range(count))
    current: DecodingOptions | None = decoding
    for rung in range(ladder.max_retries + 1):
        if rung > 0:
            current = ladder.next_decoding(current)
            if current is None:
                break
        results = generate(current, list(pending))
        if len(results) != len(pending):
            raise ValueError(f"generate returned {len(results)} results for {len(pending)} segments")
        for index, result in zip(pending, results):
            attempts[index].append(Attempt(result, current, judge(result)))
        pending = [i for i in pending if attempts[i][-1].verdict.failed]
        if not pending:
            break
    return [FallbackOutcome(tuple(a), best_attempt(a)) for a in attempts]
