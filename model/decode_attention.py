"""Attention for the engines' compiled decode step: grouped-query heads without copying keys and values.

transformers' sdpa path packs a decode step's query heads onto their shared
key/value head (`pack_gqa`) only when not compiling; under `torch.compile`
it falls back to `repeat_kv`, which copies every layer's whole cache once per
query head in the group (8 for the 30B-A3B thinker: at 64 rows and a
2560-token cache, about 5 GB per layer per step). Here a step's query is
always packed: [rows, heads, 1, dim] -> [rows, kv heads, group, dim], so
each kv head attends with its group's queries as if they were positions
(the mask, [rows, 1, 1, cache], broadcasts over them), and the cache is read
once. Prompts (more than one query position) go through transformers' sdpa.
"""

from __future__ import annotations

from contextlib import contextmanager

NAME = "omni_caption_packed_sdpa"


def packed_sdpa(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, is_causal=None,
                **kwargs):
    import torch.nn.functional as F
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    rows, heads, positions, dim = query.shape
    kv_heads = key.shape[1]
    if positions != 1 or heads == kv_heads:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    packed = query.reshape(rows, kv_heads, heads // kv_heads, dim)
    out = F.scaled_dot_product_attention(packed, key, value, attn_mask=attention_mask, scale=scaling)
    return out.reshape(rows, heads, 1, dim).transpose(1, 2).contiguous(), None


def _register() -> None:
    """Make the name known to transformers (attention and mask creation, which treats it like sdpa)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    if NAME not in AttentionInterface._global_mapping:
        AttentionInterface.register(NAME, packed_sdpa)
    if NAME not in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
        ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)


@contextmanager
def packed_decode_attention(text_config):
    """The text model attends through `packed_sdpa` inside the block, when it uses sdpa (eager stays eager)."""
    previous = text_config._attn_implementation
    if previous != "sdpa":
        yield
        return
    _register()
    text_config._attn_implementation = NAME
    try:
        yield
    finally:
        text_config._attn_implementation = previous


def slot_attention_mask(mask, implementation: str, dtype):
    """A [rows, cache_len] bool mask (rows at different positions) as the [rows, 1, 1, cache_len] mask the
    attention takes as is: bool for sdpa, additive for eager."""
    import torch

    if implementation != "sdpa":
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            ~mask, torch.finfo(dtype).min)[:, None, None, :]
    return mask[:, None, None, :]
