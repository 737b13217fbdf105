"""The refill engine's per-slot decode state: what each slot's row has made so far, and who holds the slot.

Device tensors, so a step touches no host memory; only `holder` lives on the
host, read at the engine's syncs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass
class SlotState:
    """Device-side state of every slot, plus which input row each one holds (host side)."""

    tokens: "torch.Tensor"  # [slots, cap] generated tokens of the current row
    logprobs: "torch.Tensor"
    count: "torch.Tensor"  # tokens generated so far
    caps: "torch.Tensor"
    finished: "torch.Tensor"  # True for an ended row and for an empty slot
    looped: "torch.Tensor"  # True for a row stopped because its tokens loop
    mask: "torch.Tensor"  # [slots, cache_len] bool: cache positions holding this row's tokens
    next_pos: "torch.Tensor"  # [4, slots, 1] text + M-RoPE positions of the next token
    history: "torch.Tensor | None"  # [slots, cache_len] token ids for the repetition penalty
    logits: "torch.Tensor | None" = None  # [slots, vocab] for the next choice
    chosen: "torch.Tensor | None" = None  # [slots] the last tokens chosen, fed by the next step
    holder: list = field(default_factory=list)  # input row index per slot, None when free

    @classmethod
    def empty(cls, slots: int, cache_len: int, cap: int, with_history: bool, vocab: int, device) -> "SlotState":
        """Every slot free: finished, holding nobody, ready for `cap` tokens in `cache_len` positions."""
        import torch

        mask = torch.zeros(slots, cache_len, dtype=torch.bool, device=device)
        # An empty slot attends to its first position, so no row sees nothing (torch 2.11's sdpa gives 0 there,
        # the eager path a uniform average; which a kernel gives is not this engine's to rely on).
        mask[:, 0] = True
        return cls(
            tokens=torch.zeros(slots, cap, dtype=torch.long, device=device),
            logprobs=torch.zeros(slots, cap, dtype=torch.float32, device=device),
            count=torch.zeros(slots, dtype=torch.long, device=device),
            caps=torch.ones(slots, dtype=torch.long, device=device),
            finished=torch.ones(slots, dtype=torch.bool, device=device),
            looped=torch.zeros(slots, dtype=torch.bool, device=device),
            mask=mask,
            next_pos=torch.zeros(4, slots, 1, dtype=torch.long, device=device),
            history=torch.zeros(slots, cache_len, dtype=torch.long, device=device) if with_history else None,
            logits=torch.zeros(slots, vocab, dtype=torch.float32, device=device),
            holder=[None] * slots,
        )
