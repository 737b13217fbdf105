"""Stopping a decoding loop while it decodes, not after the token cap.

Why: a caption that loops runs to its cap (2048 tokens where a caption is
about 400), so a few loopers cost a stage as many steps as many good captions,
and their text is flagged and retried anyway. A loop here is the tail of a
row's tokens made of one unit of 1..`max_unit` token ids repeated back to back
over at least `min_tokens` tokens and `min_repeats` copies: far longer than
the text guard's loop (16 words), so speech that repeats itself ("no, no,
no...") is not cut.

`first_loop_end` defines the result: where the tokens are cut. Plain `generate`
checks every step (`LoopStopCriteria`); the engines check at their host syncs
(`looping_now`), so they may decode a few tokens past that point, and the cut
makes every decoder's tokens the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class LoopStop:
    max_unit: int = 64  # token ids in the repeated unit (a sentence of a looping caption is about 20..40)
    min_repeats: float = 4.0
    min_tokens: int = 128  # "no," 64 times: no speech repeats one unit that long

    def __post_init__(self):
        if self.max_unit < 1 or self.min_repeats < 2 or self.min_tokens < 2:
            raise ValueError(f"a loop needs a unit of >= 1 token repeated >= 2 times over >= 2 tokens: {self}")

    def span(self, unit: int) -> int:
        """Tokens a loop of this unit length covers when it is caught (its first copy included)."""
        return max(math.ceil(self.min_repeats * unit), self.min_tokens)


def first_loop_end(ids: Sequence[int], stop: LoopStop) -> int | None:
    """The number of tokens to keep: the shortest prefix whose tail loops (None: no loop)."""
    a = np.asarray(ids, dtype=np.int64)
    best: int | None = None
    for unit in range(1, min(stop.max_unit, len(a) - 1) + 1):
        need = stop.span(unit) - unit  # tokens that each equal the one `unit` places before
        if need > len(a) - unit:
            continue
        same = a[unit:] == a[:-unit]
        index = np.arange(len(same))
        last_different = np.maximum.accumulate(np.where(same, -1, index))
        hits = np.flatnonzero(index - last_different >= need)
        if len(hits):
            end = int(hits[0]) + unit + 1
            best = end if best is None else min(best, end)
    return best


def looping_now(tokens: "torch.Tensor", counts: "torch.Tensor", stop: LoopStop) -> "torch.Tensor":
    """Per row: do its first `counts[row]` tokens (of `tokens` [rows, width]) end in a loop? On their device,
    in a fixed number of kernels (no host sync)."""
    import torch

    device = tokens.device
    span_list = [stop.span(u) for u in range(1, stop.max_unit + 1)]
    width = max(span_list)  # from the options, not the device: no host sync
    units = torch.arange(1, stop.max_unit + 1, device=device)
    spans = torch.tensor(span_list, device=device)
    # Each row's last `width` tokens, then one index for every row: 3x faster on a CPU than a per-row gather.
    last = (counts[:, None] - width + torch.arange(width, device=device)).clamp(0, tokens.shape[1] - 1)
    tail = tokens.gather(1, last)
    back = torch.arange(max(s - u for u, s in enumerate(span_list, 1)), device=device)  # j tokens back
    needed = back[None, :] < (spans - units)[:, None]  # [units, back]
    here = width - 1 - back
    before = (here[None, :] - units[:, None]).clamp(min=0)  # [units, back]
    theirs = tail[:, before.reshape(-1)].reshape(tail.shape[0], len(units), -1)
    repeats = ((tail[:, here][:, None, :] == theirs) | ~needed[None]).all(-1) & (counts[:, None] >= spans[None, :])
    return repeats.any(-1)


class LoopStopCriteria:
    """A transformers stopping criterion: a row stops once its generated tokens end in a loop."""

    def __init__(self, prompt_len: int, stop: LoopStop):
        self.prompt_len = prompt_len
        self.stop = stop

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        generated = input_ids[:, self.prompt_len:]
        count = generated.shape[1]
        if count < self.stop.min_tokens:
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        return looping_now(generated, torch.full((generated.shape[0],), count, device=input_ids.device), self.stop)
