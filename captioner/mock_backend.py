"""A MOCK generation backend for tests: returns queued texts, records what it was asked.

Like simonw/llm's MockModel: tests `enqueue()` crafted outputs, pass the mock
where a `generate(decoding, indices)` callable goes (see `fallback.GenerateFn`),
and assert on `calls`. Its results are `MockGenerationResult`s, a marked
subclass, so nothing built from them can pass for model output:
`is_mock_result()` tells them apart. It is not exported from
`omni_caption.captioner` and no pipeline code path constructs it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from omni_caption.model import DecodingOptions, GenerationResult


@dataclass(frozen=True)
class MockGenerationResult(GenerationResult):
    """A crafted result: test data, never a model's output."""


def is_mock_result(result: GenerationResult) -> bool:
    return isinstance(result, MockGenerationResult)


@dataclass(frozen=True)
class MockCall:
    decoding: DecodingOptions
    indices: tuple[int, ...]

    @property
    def temperature(self) -> float:
        return self.decoding.temperature if self.decoding.do_sample else 0.0


class MockQueueEmpty(AssertionError):
    """The test asked for more outputs than it queued."""


@dataclass
class MockBackend:
    """Hands out queued results in order, one per requested segment, and records every call."""

    calls: list[MockCall] = field(default_factory=list)
    _queue: deque = field(default_factory=deque, repr=False)

    def enqueue(self, text: str, *, num_tokens: int | None = None, hit_token_cap: bool = False,
                mean_logprob: float | None = -0.1, loop_stopped: bool = False) -> "MockBackend":
        tokens = num_tokens if num_tokens is not None else max(1, len(text.split()))
        self._queue.append(MockGenerationResult(text=text, token_ids=tuple(range(tokens)), num_tokens=tokens,
                                                hit_token_cap=hit_token_cap, mean_logprob=mean_logprob,
                                                loop_stopped=loop_stopped))
        return self

    @property
    def pending(self) -> int:
        return len(self._queue)

    def generate(self, decoding: DecodingOptions, indices: Sequence[int]) -> list[GenerationResult]:
        self.calls.append(MockCall(decoding, tuple(indices)))
        if len(self._queue) < len(indices):
            raise MockQueueEmpty(f"asked for {len(indices)} outputs, {len(self._queue)} queued")
        return [self._queue.popleft() for _ in indices]

    __call__ = generate
