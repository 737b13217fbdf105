"""Prefill groups and full-length slots of the refill engine, as arithmetic (Hypothesis)."""

from hypothesis import given
from hypothesis import strategies as st

from omni_caption.model.refill_plan import full_length_slots, prefill_group

rows_strategy = st.lists(st.tuples(st.integers(1, 400), st.integers(0, 300), st.integers(1, 600)),
                         min_size=1, max_size=30)  # (prompt, fed prefix, cap left) per row


@given(rows_strategy, st.integers(1, 16), st.integers(2, 1200))
def test_a_group_never_cuts_a_row_that_fits_its_slot_alone(rows, size, cache_len):
    prompt, fed, caps = ([r[k] for r in rows] for k in range(3))
    queue = sorted(range(len(rows)), key=lambda i: -(prompt[i] + fed[i]))
    group = prefill_group(queue, size, prompt.__getitem__, fed.__getitem__, caps, cache_len)
    assert group[0] == queue[0] and 1 <= len(group) <= size
    assert group == [i for i in queue if i in group]  # queue order, no repeats
    loaded = max(prompt[i] for i in group) + max(fed[i] for i in group)
    for i in group:
        if caps[i] <= cache_len - prompt[i] - fed[i] + 1:
            assert caps[i] <= cache_len - loaded + 1


@given(rows_strategy, st.integers(1, 16))
def test_rows_that_fit_together_are_grouped_up_to_the_size(rows, size):
    """A cache long enough for every row padded to the longest: the group is simply the queue's head."""
    prompt, fed, caps = ([r[k] for r in rows] for k in range(3))
    roomy = max(prompt) + max(fed) + max(caps)
    queue = list(range(len(rows)))
    assert prefill_group(queue, size, prompt.__getitem__, fed.__getitem__, caps, roomy) == queue[:size]


def test_rows_that_cannot_fit_alone_join_any_group():
    prompt, fed, caps = [100, 10, 10], [0, 50, 50], [500, 500, 500]  # none fits a 300-position slot alone
    assert prefill_group([0, 1, 2], 3, prompt.__getitem__, fed.__getitem__, caps, 300) == [0, 1, 2]
    caps = [160, 160, 160]  # now each fits alone, but not padded to 100 + 50 positions
    assert prefill_group([0, 1, 2], 3, prompt.__getitem__, fed.__getitem__, caps, 300) == [0]
    assert prefill_group([1, 2, 0], 3, prompt.__getitem__, fed.__getitem__, caps, 300) == [1, 2]


@given(st.integers(1, 512), st.integers(1, 8192), st.integers(1, 8192))
def test_full_length_slots_fit_in_the_slots_memory(slots, cache_len, extra):
    full_len = cache_len + extra
    long = full_length_slots(slots, cache_len, full_len)
    assert long >= 1 and (long == 1 or long * full_len <= slots * cache_len)
    assert (long + 1) * full_len > slots * cache_len


@given(rows_strategy, st.integers(1, 16), st.integers(1, 5000))
def test_a_group_keeps_within_its_positions_budget(rows, size, max_tokens):
    prompt, fed, caps = ([r[k] for r in rows] for k in range(3))
    queue = list(range(len(rows)))
    group = prefill_group(queue, size, prompt.__getitem__, fed.__getitem__, caps, 10_000, max_tokens)
    loaded = max(prompt[i] for i in group) + max(fed[i] for i in group)
    assert len(group) == 1 or len(group) * loaded <= max_tokens
