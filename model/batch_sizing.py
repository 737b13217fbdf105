"""Batch sizes for GPU decoding: shape buckets, `--batch-size auto` from a memory model, halving on OOM.

Compiled decoding pays only with few fixed shapes, so batch sizes go to powers
of two and cache lengths to a quantum. `auto` picks the largest bucket whose
static KV cache plus prefill activations fit in the free memory after the
model loaded; whatever the estimate misses, an out-of-memory error halves the
batch and retries both halves, so no segment is lost and order is kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

GiB = 1 << 30


def round_up(value: int, quantum: int) -> int:
    """The smallest multiple of `quantum` that is >= value (and > 0)."""
    if quantum < 1:
        raise ValueError(f"quantum must be >= 1, not {quantum}")
    return max(quantum, math.ceil(value / quantum) * quantum)


def power_of_two_buckets(largest: int) -> tuple[int, ...]:
    """1, 2, 4, ... up to `largest`, which is always a bucket itself (it need not be a power of two)."""
    if largest < 1:
        raise ValueError(f"largest bucket must be >= 1, not {largest}")
    buckets = [1 << k for k in range(largest.bit_length()) if 1 << k < largest]
    return tuple(buckets + [largest])


def slot_counts(largest: int, step: int = 16) -> tuple[int, ...]:
    """Refill slot counts to size from: powers of two below `step`, then every multiple of it, up to
    `largest` (itself always one). The refill engine compiles one shape per stage, so its slots need not be a
    power of two, and steps of 16 leave less memory unused (112 slots where 64 is the power of two below)."""
    counts = [1 << k for k in range(step.bit_length()) if 1 << k < min(step, largest)]
    return tuple(counts + list(range(step, largest, step)) + [largest])


def bucket_up(value: int, buckets: Sequence[int]) -> int:
    """The smallest bucket >= value; a value above every bucket is its own bucket."""
    return next((b for b in sorted(buckets) if b >= value), value)


def head_dim_of(text_config) -> int:
    """Each attention head's width: the config's own, or hidden size over heads where it names none."""
    return getattr(text_config, "head_dim", None) or text_config.hidden_size // text_config.num_attention_heads


@dataclass(frozen=True)
class MemoryModel:
    """Bytes one sequence needs on the GPU while it is decoded, from the thinker's text config.

    `kv_bytes_per_token`: keys and values of every layer. `prefill_bytes_per_token`: the activation peak
    of one MoE layer during prefill (top-k copies of the token, gate/up and activation outputs, weighted
    outputs, attention projections, residual stream). `row_bytes`: per-row decode-step extras (fp32 logits,
    log-softmax and the sampling copies over the vocabulary).
    """

    kv_bytes_per_token: int
    prefill_bytes_per_token: int
    row_bytes: int
    activation_headroom: float = 2.0  # allocator fragmentation and the audio encoder's own activations

    @classmethod
    def from_text_config(cls, config, dtype_bytes: int = 2) -> "MemoryModel":
        hidden = config.hidden_size
        head_dim = head_dim_of(config)
        kv = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * dtype_bytes
        # MoE (Qwen3-Omni): the top-k experts' activations; dense (Qwen2.5-Omni): one MLP of intermediate_size.
        top_k = getattr(config, "num_experts_per_tok", None) or 1
        inter = getattr(config, "moe_intermediate_size", None) or config.intermediate_size
        attention = (config.num_attention_heads + 2 * config.num_key_value_heads) * head_dim
        prefill = dtype_bytes * (top_k * (2 * hidden + 3 * inter) + 6 * hidden + attention)
        return cls(kv_bytes_per_token=kv, prefill_bytes_per_token=prefill, row_bytes=4 * 4 * config.vocab_size)

    def bytes_per_sequence(self, prompt_tokens: int, cache_len: int) -> int:
        return self.bytes_for_batch(1, prompt_tokens, cache_len)

    def bytes_for_batch(self, batch: int, prompt_tokens: int, cache_len: int, prefill_rows: int | None = None) -> int:
        """Every row's KV cache and step extras, plus the prefill activations of the rows prefilled at once:
        all of them (a fixed batch), or at most `prefill_rows` (the refill engine prefills in chunks)."""
        prefilled = batch if prefill_rows is None else min(batch, prefill_rows)
        activations = self.activation_headroom * self.prefill_bytes_per_token * prompt_tokens * prefilled
        return int(batch * (self.kv_bytes_per_token * cache_len + self.row_bytes) + activations)


def auto_batch_size(free_bytes: int, memory: MemoryModel, prompt_tokens: int, cache_len: int,
                    max_batch: int = 256, reserve_fraction: float = 0.1, prefill_rows: int | None = None,
                    sizes: Sequence[int] | None = None) -> int:
    """The largest batch of `sizes` (default: the powers of two up to max_batch) that fits in `free_bytes`
    minus a reserve; 1 where none does."""
    usable = free_bytes * (1.0 - reserve_fraction)
    fitting = [b for b in (sizes or power_of_two_buckets(max_batch))
               if memory.bytes_for_batch(b, prompt_tokens, cache_len, prefill_rows) <= usable]
    return max(fitting, default=1)


def prefill_rows_that_fit(free_bytes: int, memory: MemoryModel, batch: int, prompt_tokens: int, cache_len: int,
                          reserve_fraction: float = 0.1) -> int:
    """How many rows (1..batch) can be prefilled at once beside `batch` rows' caches: the memory the slots
    leave. Slots are what decoding speed scales with, so they are sized first and prefills take the rest."""
    usable = free_bytes * (1.0 - reserve_fraction)
    row_activations = memory.bytes_for_batch(1, prompt_tokens, cache_len) - memory.bytes_for_batch(1, 0, cache_len)
    left = usable - memory.bytes_for_batch(batch, 0, cache_len)
    return max(1, min(batch, int(left // max(1, row_activations))))


@dataclass
class BatchLimit:
    """The batch size a stage uses now; an out-of-memory error lowers it for the rest of the stage."""

    size: int

    def after_oom(self, failed_size: int) -> None:
        """At most the larger half of the batch that failed: that is what the retry runs next."""
        self.size = max(1, min(self.size, (failed_size + 1) // 2))


def chunks_within(items: Sequence[Item], size: Callable[[], int]) -> Iterator[list[Item]]:
    """Consecutive chunks of `items`, each as long as `size()` says when it is taken: a limit an OOM
    lowered while the caller ran one chunk applies to the next."""
    start = 0
    while start < len(items):
        chunk = list(items[start:start + max(1, size())])
        start += len(chunk)
        yield chunk


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc))


def run_halving_on_oom(run: Callable[[list[Item]], list[Result]], items: Sequence[Item],
                       limit: BatchLimit | None = None, on_oom: Callable[[], None] | None = None,
                       in_flight: Callable[[int], int] = lambda count: count) -> list[Result]:
    """`run(items)`; if it runs out of memory, free, halve and run both halves: one result per item, in order.

    `in_flight(n)`: how many of n items `run` decodes at once (all of them, unless an engine queues them
    through fewer slots, or keeps more slots than items: fixed slots); that is the size that did not fit.
    With fixed slots the same items are retried through fewer. A single item that still does not fit in
    one slot re-raises the error: there is nothing left to halve.
    """
    items = list(items)
    try:
        return run(items)
    except Exception as exc:
        flying = in_flight(len(items))
        if not is_out_of_memory(exc) or (len(items) <= 1 and (flying <= 1 or limit is None)):
            raise
    if on_oom is not None:
        on_oom()
    if limit is not None:
        limit.after_oom(flying)
        if flying > len(items):  # the slots did not fit, not these items
            return run_halving_on_oom(run, items, limit, on_oom, in_flight)
    half = (len(items) + 1) // 2
    return (run_halving_on_oom(run, items[:half], limit, on_oom, in_flight)
            + run_halving_on_oom(run, items[half:], limit, on_oom, in_flight))
