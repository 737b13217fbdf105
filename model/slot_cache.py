"""The refill engine's KV cache: a row per decode slot, each row written at its own position.

Why a cache of its own: transformers' `StaticCache` writes every row of a
step at one shared position, and a refill slot starts a new sequence while
its neighbours continue. `SlotLayer.update` writes row r's key at
`write_pos[r]`; each row's attention mask (kept by the engine) says which of
its positions hold its own tokens.

Every cache shape a decoder uses views one `SlotStorage`: flat key and value
buffers per layer. A second shape (fewer slots, longer rows: where rows that
outgrew their slot's cache continue) then costs no memory, and each shape's
tensors keep their addresses from call to call, which a CUDA graph recorded
on them needs (a moved tensor re-records the graph, and after a limit
torch.compile gives up on graphs).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from transformers.cache_utils import Cache, StaticLayer

from .batch_sizing import head_dim_of

if TYPE_CHECKING:
    import torch


class SlotStorage:
    """Flat key and value buffers, one pair per layer, that cache shapes of up to `numel` elements view."""

    def __init__(self, layers: int, numel: int, dtype, device):
        import torch

        self.numel, self.dtype, self.device = numel, dtype, torch.device(device)
        self.keys = [torch.zeros(numel, dtype=dtype, device=device) for _ in range(layers)]
        self.values = [torch.zeros(numel, dtype=dtype, device=device) for _ in range(layers)]

    def holds(self, numel: int, dtype, device) -> bool:
        import torch

        return numel <= self.numel and dtype == self.dtype and torch.device(device) == self.device

    def view(self, layer: int, shape: tuple[int, ...]) -> tuple["torch.Tensor", "torch.Tensor"]:
        numel = math.prod(shape)
        return self.keys[layer][:numel].view(shape), self.values[layer][:numel].view(shape)


class SlotLayer(StaticLayer):
    """One layer's static keys/values; a decode step writes each row at its own position."""

    def __init__(self, max_cache_len: int, write_pos, row_index, storage: SlotStorage | None = None,
                 layer: int = 0):
        super().__init__(max_cache_len)
        self.write_pos = write_pos  # [slots], shared by every layer of the cache
        self.row_index = row_index
        self.storage, self.layer = storage, layer

    def lazy_initialization(self, key_states, value_states) -> None:
        """transformers' own set-up, with the keys and values viewing the storage instead of new buffers."""
        import torch

        if self.storage is None:
            return super().lazy_initialization(key_states, value_states)
        cache_len, self.max_cache_len = self.max_cache_len, 0
        try:  # every attribute transformers sets, with empty buffers
            super().lazy_initialization(key_states, value_states)
        finally:
            self.max_cache_len = cache_len
        shape = (*key_states.shape[:2], cache_len, key_states.shape[-1])
        self.keys, self.values = self.storage.view(self.layer, shape)
        torch._dynamo.mark_static_address(self.keys)
        torch._dynamo.mark_static_address(self.values)

    def update(self, key_states, value_states, *args, **kwargs):
        if key_states.shape[-2] != 1:
            raise ValueError("a slot cache takes one token per row; prompts are loaded with SlotCache.load_rows")
        self.keys[self.row_index, :, self.write_pos] = key_states[:, :, 0]
        self.values[self.row_index, :, self.write_pos] = value_states[:, :, 0]
        return self.keys, self.values


def slot_cache_numel(text_config, slots: int, cache_len: int) -> int:
    """Elements of one layer's keys (or values) for `slots` rows of `cache_len` positions."""
    return slots * text_config.num_key_value_heads * cache_len * head_dim_of(text_config)


class SlotCache(Cache):
    def __init__(self, text_config, slots: int, cache_len: int, dtype, device, storage: SlotStorage | None = None):
        import torch

        self.write_pos = torch.zeros(slots, dtype=torch.long, device=device)
        self.row_index = torch.arange(slots, device=device)
        super().__init__(layers=[SlotLayer(cache_len, self.write_pos, self.row_index, storage, layer)
                                 for layer in range(text_config.num_hidden_layers)])
        self.early_initialization(slots, text_config.num_key_value_heads, head_dim_of(text_config), dtype, device)
        torch._dynamo.mark_static_address(self.write_pos)
        torch._dynamo.mark_static_address(self.row_index)
        self.slots, self.cache_len = slots, cache_len

    def load_rows(self, slot_ids, prefilled: Cache, length: int) -> None:
        """A prefilled group's keys and values into rows `slot_ids`; their next token goes at `length`."""
        for layer, source in zip(self.layers, prefilled.layers):
            layer.keys[slot_ids, :, :length] = source.keys
            layer.values[slot_ids, :, :length] = source.values
        self.write_pos[slot_ids] = length
