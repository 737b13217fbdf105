"""Shape buckets, the `--batch-size auto` memory model and OOM halving (no GPU: faults are injected)."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from transformers import Qwen3OmniMoeTextConfig

from omni_caption.model.batch_sizing import (GiB, BatchLimit, MemoryModel, auto_batch_size, bucket_up,
                                             chunks_within, power_of_two_buckets, prefill_rows_that_fit, round_up,
                                             run_halving_on_oom, slot_counts)
from omni_caption.model.decode_runtime import refill_slots

# The released 30B-A3B thinker's text model (ARCHITECTURE.md section 2).
FULL_TEXT = Qwen3OmniMoeTextConfig(vocab_size=152064, hidden_size=2048, num_hidden_layers=48, num_attention_heads=32,
                                   num_key_value_heads=4, head_dim=128, num_experts=128, num_experts_per_tok=8,
                                   moe_intermediate_size=768)


@given(st.integers(0, 100_000), st.integers(1, 4096))
def test_round_up(value, quantum):
    rounded = round_up(value, quantum)
    assert rounded % quantum == 0 and rounded >= max(value, 1) and rounded - quantum < max(value, 1)


@given(st.integers(1, 4096))
def test_power_of_two_buckets(largest):
    buckets = power_of_two_buckets(largest)
    assert buckets[-1] == largest and list(buckets) == sorted(set(buckets))
    assert all(b & (b - 1) == 0 for b in buckets[:-1])
    assert all(b * 2 >= largest for b in buckets[-2:-1])  # no power of two missing below the largest


@given(st.integers(1, 5000), st.integers(1, 1024))
def test_bucket_up_is_the_smallest_fitting_bucket(value, largest):
    buckets = power_of_two_buckets(largest)
    chosen = bucket_up(value, buckets)
    assert chosen >= value
    assert chosen in buckets or (chosen == value > largest)
    assert not [b for b in buckets if value <= b < chosen]


def test_memory_model_on_the_released_thinker():
    memory = MemoryModel.from_text_config(FULL_TEXT)
    assert memory.kv_bytes_per_token == 2 * 48 * 4 * 128 * 2 == 96 * 1024  # keys + values, 48 layers, bf16
    assert memory.prefill_bytes_per_token == 2 * (8 * (2 * 2048 + 3 * 768) + 6 * 2048 + 40 * 128) == 137_216
    assert memory.row_bytes == 16 * 152064
    # A 30 s clip: ~410 prompt tokens. Benchmark shape (128 new tokens, cache 768) vs captions (2048, cache 2560).
    assert memory.bytes_per_sequence(410, 768) == 98304 * 768 + 2 * 137_216 * 410 + 16 * 152064 == 190_447_616
    assert auto_batch_size(16 * GiB, memory, 410, 768) == 64  # 81 sequences fit in 90% of 16 GiB
    assert auto_batch_size(16 * GiB, memory, 410, 2560) == 32  # 42 fit
    assert auto_batch_size(64 * GiB, memory, 410, 768, max_batch=256) == 256
    assert auto_batch_size(100 * 2**20, memory, 410, 2560) == 1  # nothing fits: still try one, OOM handling decides
    # An H100 after the 30B-A3B thinker (about 18.6 GiB free), captions capped at 2048 tokens. Prefilling every
    # slot at once, 48 rows of 361 MiB fit: 32 slots. The refill engine prefills in chunks, so activations are
    # paid for a chunk (4 rows, then what the slots leave: 13), not for every slot: 64 slots.
    h100_free = int(18.6 * GiB)
    assert auto_batch_size(h100_free, memory, 454, 2560) == 32
    assert auto_batch_size(h100_free, memory, 454, 2560, prefill_rows=4) == 64
    assert prefill_rows_that_fit(h100_free, memory, 64, 454, 2560) == 13
    assert memory.bytes_for_batch(64, 454, 2560, prefill_rows=13) == (
        64 * (98304 * 2560 + 16 * 152064) + 2 * 137_216 * 454 * 13) <= 0.9 * h100_free
    assert memory.bytes_for_batch(64, 454, 2560, prefill_rows=14) > 0.9 * h100_free
    assert prefill_rows_that_fit(h100_free, memory, 128, 454, 2560) == 1  # the slots alone do not fit: OOM decides
    assert prefill_rows_that_fit(64 * GiB, memory, 8, 454, 2560) == 8  # never more than the slots
    # Refill slots need not be powers of two (one compiled shape per stage), and `auto` gives a slot the prompt
    # and half the cap where that buys more slots: 112 of 1536 positions instead of 64 of 2560.
    assert refill_slots(h100_free, memory, 454, 2048) == (112, 1536)
    assert memory.bytes_for_batch(112, 454, 1536, prefill_rows=4) <= 0.9 * h100_free
    assert memory.bytes_for_batch(128, 454, 1536, prefill_rows=4) > 0.9 * h100_free
    assert refill_slots(h100_free, memory, 454, 2048, cap_share=1.0) == (64, None)
    assert refill_slots(80 * GiB, memory, 454, 2048) == (256, None)  # an emptier GPU: the whole cap fits anyway


@given(st.integers(1, 2048))
def test_slot_counts_are_powers_of_two_then_steps_of_16(largest):
    counts = slot_counts(largest)
    assert counts[0] == 1 and counts[-1] == largest and list(counts) == sorted(set(counts))
    assert all(b - a <= 16 for a, b in zip(counts, counts[1:]))
    assert all(c & (c - 1) == 0 or c % 16 == 0 for c in counts[:-1])


@given(st.integers(0, 100 * GiB), st.integers(1, 3000), st.integers(1, 8192))
def test_refill_slots_never_fewer_than_slots_of_the_whole_cap(free, prompt, cap):
    memory = MemoryModel.from_text_config(FULL_TEXT)
    slots, slot_len = refill_slots(free, memory, prompt, cap)
    full_len = round_up(prompt + cap, 256)
    whole = auto_batch_size(free, memory, prompt, full_len, prefill_rows=4, sizes=slot_counts(256))
    assert slots >= whole and (slot_len is None) == (slots == whole)
    assert slot_len is None or prompt < slot_len < full_len
    assert slots == 1 or memory.bytes_for_batch(slots, prompt, slot_len or full_len, prefill_rows=4) <= 0.9 * free


@given(st.integers(0, 200 * GiB), st.integers(1, 4000), st.integers(1, 8192), st.sampled_from([1, 8, 64, 200, 256]),
       st.one_of(st.none(), st.integers(1, 300)))
def test_auto_batch_size_fits_and_is_maximal(free, prompt, cache_len, max_batch, prefill_rows):
    memory = MemoryModel.from_text_config(FULL_TEXT)
    size = auto_batch_size(free, memory, prompt, cache_len, max_batch=max_batch, prefill_rows=prefill_rows)

    def need(batch):
        prefilled = batch if prefill_rows is None else min(batch, prefill_rows)
        return batch * memory.bytes_per_sequence(prompt, cache_len) - (batch - prefilled) * (
            memory.bytes_per_sequence(prompt, cache_len) - memory.bytes_per_sequence(0, cache_len))

    assert 1 <= size <= max_batch and size in power_of_two_buckets(max_batch)
    assert size == 1 or need(size) <= 0.9 * free
    bigger = [b for b in power_of_two_buckets(max_batch) if b > size]
    assert not bigger or need(bigger[0]) > 0.9 * free
    assert auto_batch_size(free * 2, memory, prompt, cache_len, max_batch=max_batch, prefill_rows=prefill_rows) >= size
    assert prefill_rows is None or size >= auto_batch_size(free, memory, prompt, cache_len, max_batch=max_batch)


def fits_in(capacity, calls):
    """A batch runner that runs out of memory above `capacity` items, like a GPU would."""
    def run(items):
        calls.append(len(items))
        if len(items) > capacity:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [f"out:{x}" for x in items]
    return run


@given(st.lists(st.integers(), min_size=1, max_size=70), st.integers(1, 80))
def test_halving_loses_nothing_and_keeps_order(items, capacity):
    calls, freed = [], []
    limit = BatchLimit(len(items))
    results = run_halving_on_oom(fits_in(capacity, calls), items, limit, on_oom=lambda: freed.append(1))
    assert results == [f"out:{x}" for x in items]
    ran = [n for n in calls if n <= capacity]
    assert sum(ran) == len(items)  # each item decoded exactly once
    assert len(freed) == len(calls) - len(ran)  # memory freed after every failure
    if len(items) <= capacity:
        assert limit.size == len(items) and calls == [len(items)]
    else:
        assert 1 <= limit.size <= capacity  # later batches start at a size that fitted


def test_halving_shrinks_the_limit_for_later_batches():
    limit = BatchLimit(64)
    calls = []
    run_halving_on_oom(fits_in(20, calls), list(range(64)), limit)
    assert calls[:3] == [64, 32, 16] and limit.size == 16


def test_other_errors_and_a_single_item_are_not_retried():
    with pytest.raises(ValueError):
        run_halving_on_oom(lambda items: (_ for _ in ()).throw(ValueError("bad input")), [1, 2, 3])
    calls = []
    with pytest.raises(torch.OutOfMemoryError):
        run_halving_on_oom(fits_in(0, calls), [1, 2])
    assert calls == [2, 1]  # halved once, then the single item fails for real


@given(st.lists(st.integers(), min_size=1, max_size=200), st.integers(1, 64), st.integers(1, 80))
def test_halving_a_queue_run_through_slots(items, slots, capacity):
    """The refill engine decodes a long queue through `limit.size` slots: the slot count is what failed."""
    limit = BatchLimit(slots)
    in_flight = lambda count: min(count, limit.size)  # noqa: E731
    tried = []

    def run(part):
        tried.append(in_flight(len(part)))
        if tried[-1] > capacity:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return [f"out:{x}" for x in part]

    assert run_halving_on_oom(run, items, limit, in_flight=in_flight) == [f"out:{x}" for x in items]
    if min(len(items), slots) <= capacity:
        assert tried == [min(len(items), slots)] and limit.size == slots  # one call, however long the queue
    else:
        assert capacity // 2 < limit.size <= capacity  # halved down to a size that fits, not further


@given(st.lists(st.integers(), min_size=1, max_size=20), st.integers(1, 64), st.integers(0, 80))
def test_halving_fixed_slots_retries_the_same_items_through_fewer(items, slots, capacity):
    """Fixed slots (the compiled refill engine) hold `limit.size` slots whatever the rows: a call of fewer rows
    than slots that runs out of memory is retried whole through half the slots, not split, so a lone
    segment fails only when one slot does not fit."""
    limit = BatchLimit(slots)
    tried = []

    def run(part):
        tried.append((len(part), limit.size))
        if limit.size > capacity:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return [f"out:{x}" for x in part]

    if capacity == 0:
        with pytest.raises(torch.OutOfMemoryError):
            run_halving_on_oom(run, items, limit, in_flight=lambda count: limit.size)
        assert limit.size == 1
        return
    results = run_halving_on_oom(run, items, limit, in_flight=lambda count: limit.size)
    assert results == [f"out:{x}" for x in items]
    assert limit.size <= capacity and (slots <= capacity or capacity // 2 < limit.size)
    if len(items) <= capacity:
        assert all(n == len(items) for n, _ in tried)  # never split: the slots were what did not fit


@given(st.lists(st.integers(), max_size=60), st.lists(st.integers(1, 9), min_size=1, max_size=20))
def test_chunks_within_follow_the_size_at_each_chunk(items, sizes):
    asked = iter(sizes * 60)
    used = []

    def size():
        used.append(next(asked))
        return used[-1]

    chunks = list(chunks_within(items, size))
    assert [x for chunk in chunks for x in chunk] == items
    assert all(len(chunk) == min(n, len(items) - sum(map(len, chunks[:k])))
               for k, (chunk, n) in enumerate(zip(chunks, used)))
    assert len(used) == len(chunks)  # the size is read once per chunk, when the chunk is taken
