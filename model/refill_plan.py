"""Which rows the refill engine prefills together, and how many slots its full-length round gets.

Pure arithmetic over row lengths and caps, kept apart from the engine so it
can be tested on its own (tests/model/test_refill_plan.py).
"""

from __future__ import annotations

from collections.abc import Callable


def slot_room(cache_len: int, loaded: int) -> int:
    """Tokens a row can make in a slot of `cache_len` positions that holds `loaded` of prompt: its last token
    is chosen from the step that wrote the slot's last position."""
    return cache_len - loaded + 1


def prefill_group(queue: list[int], size: int, prompt_len: Callable[[int], int], fed_len: Callable[[int], int],
                  caps: list[int], cache_len: int, max_tokens: int | None = None) -> list[int]:
    """The queue's head and up to `size - 1` rows after it, in queue order; with `max_tokens`, no more rows
    than keep rows x loaded positions within it (a prefill's activations), the head alone excepted.

    A group loads its longest prompt plus its longest fed prefix (the tokens a continued row made before) for
    every row, and that takes room from each row's slot. A row whose cap fits its slot alone joins only a
    group where it still fits, so it never outgrows a cache for its neighbours' sake; one that cannot fit
    alone goes on after the queue either way, so it joins any group.
    """
    def fits_alone(i: int) -> bool:
        return caps[i] <= slot_room(cache_len, prompt_len(i) + fed_len(i))

    group = [queue[0]]
    for i in queue[1:]:
        if len(group) == size:
            break
        trial = group + [i]
        loaded = max(map(prompt_len, trial)) + max(map(fed_len, trial))
        if max_tokens is not None and len(trial) * loaded > max_tokens:
            break
        if all(caps[j] <= slot_room(cache_len, loaded) for j in trial if fits_alone(j)):
            group = trial
    return group


def full_length_slots(slots: int, cache_len: int, full_len: int) -> int:
    """Slots of `full_len` positions in the memory of `slots` slots of `cache_len` (at least one)."""
    return max(1, slots * cache_len // full_len)
