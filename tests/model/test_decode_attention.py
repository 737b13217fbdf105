"""Packed grouped-query attention for compiled decode steps: same numbers as transformers' sdpa, no KV copies."""

import pytest
import torch
from transformers.integrations import sdpa_attention

from omni_caption.model.decode_attention import NAME, packed_decode_attention, packed_sdpa


class Layer(torch.nn.Module):
    num_key_value_groups = 4
    is_causal = True
    training = False


def qkv(rows=3, heads=8, kv_heads=2, positions=1, cache=10, dim=16):
    generator = torch.Generator().manual_seed(0)
    draw = lambda *shape: torch.randn(*shape, generator=generator)  # noqa: E731
    mask = torch.rand(rows, 1, positions, cache, generator=generator) > 0.3
    mask[..., 0] = True  # every row sees something
    return draw(rows, heads, positions, dim), draw(rows, kv_heads, cache, dim), draw(rows, kv_heads, cache, dim), mask


def test_packed_step_equals_transformers_sdpa():
    query, key, value, mask = qkv()
    expected, _ = sdpa_attention.sdpa_attention_forward(Layer(), query, key, value, mask, scaling=0.25)
    got, _ = packed_sdpa(Layer(), query, key, value, mask, scaling=0.25)
    assert got.shape == expected.shape == (3, 1, 8, 16)
    torch.testing.assert_close(got, expected)
    additive = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)
    torch.testing.assert_close(packed_sdpa(Layer(), query, key, value, additive, scaling=0.25)[0], expected)


def test_prompts_go_through_transformers_sdpa():
    query, key, value, mask = qkv(positions=5)
    torch.testing.assert_close(packed_sdpa(Layer(), query, key, value, mask)[0],
                               sdpa_attention.sdpa_attention_forward(Layer(), query, key, value, mask)[0])


def test_only_the_library_copies_the_cache_when_compiling(monkeypatch):
    """The premise: compiling, transformers' sdpa repeats keys/values per query head; the packed step never does."""
    copies = []
    real_repeat = sdpa_attention.repeat_kv
    monkeypatch.setattr(sdpa_attention, "repeat_kv", lambda x, n: copies.append(n) or real_repeat(x, n))
    monkeypatch.setattr(sdpa_attention, "is_torchdynamo_compiling", lambda: True)
    query, key, value, mask = qkv()
    sdpa_attention.sdpa_attention_forward(Layer(), query, key, value, mask)
    assert copies == [4, 4]
    packed_sdpa(Layer(), query, key, value, mask)
    assert copies == [4, 4]


def test_the_switch_is_scoped_and_leaves_eager_alone(tiny):
    config = tiny.model.thinker.config.get_text_config()
    assert config._attn_implementation == "sdpa"
    with packed_decode_attention(config):
        assert config._attn_implementation == NAME
    assert config._attn_implementation == "sdpa"
    config._attn_implementation = "eager"
    try:
        with packed_decode_attention(config):
            assert config._attn_implementation == "eager"
    finally:
        config._attn_implementation = "sdpa"
    with pytest.raises(RuntimeError), packed_decode_attention(config):
        raise RuntimeError("a failed step")
    assert config._attn_implementation == "sdpa"
