"""A complete tiny Qwen3-Omni with random weights, built and saved locally.

Every part of the real architecture is present (thinker with AuT audio
encoder and MoE text model, talker with MoE and MTP code predictor, code2wav)
plus a locally trained byte-level BPE tokenizer with Qwen's special tokens, a
chat template and a processor. It is saved with `save_pretrained` once and then
loaded through exactly the same `from_pretrained` path as real checkpoints.
Its output is nonsense by construction: it exists for tests and the offline demo.
"""

from __future__ import annotations

from pathlib import Path

from .tiny_build import (NONSENSE_NOTICE, TINY_RANDOM_SEED, TokenizerSpec, build_tokenizer, cached_build,
                         fill_uninitialised, save_tiny)

__all__ = ["NONSENSE_NOTICE", "build_config", "build_tiny_random", "tiny_random_dir"]

# Bump when the build changes so old caches are not reused.
TINY_RANDOM_VERSION = "2"

TEXT_VOCAB_SIZE = 512
THINKER_HIDDEN = 64
CODEBOOK_SIZE = 64
NUM_CODE_GROUPS = 4

TOKENIZER = TokenizerSpec(
    special_tokens=(
        "<|endoftext|>", "<|im_start|>", "<|im_end|>",
        "<|audio_start|>", "<|audio_end|>", "<|audio_pad|>",
        "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",
        "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>",
    ),
    named_tokens={
        "image_token": "<|image_pad|>", "audio_token": "<|audio_pad|>", "video_token": "<|video_pad|>",
        "vision_bos_token": "<|vision_start|>", "vision_eos_token": "<|vision_end|>",
        "audio_bos_token": "<|audio_start|>", "audio_eos_token": "<|audio_end|>",
    },
    max_ids=TEXT_VOCAB_SIZE,
)


def tiny_random_dir(cache_dir: Path) -> Path:
    """The folder holding tiny-random, building it on first use."""
    return cached_build(Path(cache_dir) / f"tiny-random-v{TINY_RANDOM_VERSION}", _build_into)


def build_tiny_random(target: Path) -> Path:
    return cached_build(target, _build_into)


def build_config(tokenizer):
    from transformers import Qwen3OmniMoeConfig

    tid = tokenizer.convert_tokens_to_ids
    mrope = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [2, 3, 3], "interleaved": True}
    text = dict(
        vocab_size=TEXT_VOCAB_SIZE, hidden_size=THINKER_HIDDEN, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_experts=4, num_experts_per_tok=2,
        moe_intermediate_size=32, max_position_embeddings=32768, rope_parameters=mrope,
        pad_token_id=tid("<|endoftext|>"), eos_token_id=tid("<|im_end|>"),
    )
    # output_dim must equal the thinker hidden size: audio features replace <|audio_pad|> embeddings.
    audio = dict(
        d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64, output_dim=THINKER_HIDDEN,
        num_mel_bins=128, n_window=50, n_window_infer=800, downsample_hidden_size=8,
    )
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=THINKER_HIDDEN,
                  deepstack_visual_indexes=[0], num_position_embeddings=64)
    media_ids = dict(
        audio_token_id=tid("<|audio_pad|>"), image_token_id=tid("<|image_pad|>"), video_token_id=tid("<|video_pad|>"),
        audio_start_token_id=tid("<|audio_start|>"), vision_start_token_id=tid("<|vision_start|>"),
    )
    # A wide init makes greedy outputs depend visibly on the audio, so parity tests can fail.
    thinker = dict(text_config={**text, "initializer_range": 0.5}, audio_config={**audio, "initializer_range": 0.5},
                   vision_config=vision, user_token_id=tid("user"),
                   **media_ids)
    cb = CODEBOOK_SIZE
    talker_text = dict(
        vocab_size=cb + 1024,  # the codec vocab is the codebook plus 1024 control ids
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        head_dim=16, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16,
        shared_expert_intermediate_size=32, rope_parameters=mrope,
    )
    # The code predictor reads talker hidden states directly: same hidden size.
    code_predictor = dict(vocab_size=cb, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=16, num_code_groups=NUM_CODE_GROUPS)
    talker = dict(
        text_config=talker_text, code_predictor_config=code_predictor, num_code_groups=NUM_CODE_GROUPS,
        thinker_hidden_size=THINKER_HIDDEN, accept_hidden_layer=1, spatial_merge_size=2,
        codec_pad_id=cb, codec_bos_id=cb + 1, codec_eos_token_id=cb + 2, codec_nothink_id=cb + 7,
        codec_think_bos_id=cb + 8, codec_think_eos_id=cb + 9,
        speaker_id={"ethan": cb + 10, "chelsie": cb + 11, "aiden": cb + 12}, **media_ids,
    )
    code2wav = dict(codebook_size=cb, hidden_size=32, num_attention_heads=2, num_key_value_heads=2,
                    intermediate_size=64, num_hidden_layers=1, num_quantizers=NUM_CODE_GROUPS, decoder_dim=32,
                    sliding_window=8)
    return Qwen3OmniMoeConfig(
        thinker_config=thinker, talker_config=talker, code2wav_config=code2wav, enable_audio_output=True,
        im_start_token_id=tid("<|im_start|>"), im_end_token_id=tid("<|im_end|>"),
        tts_pad_token_id=tid("<tts_pad>"), tts_bos_token_id=tid("<tts_text_bos>"),
        tts_eos_token_id=tid("<tts_text_eod>"), system_token_id=tid("system"), user_token_id=tid("user"),
        assistant_token_id=tid("assistant"),
    )


def _build_into(staging: Path) -> None:
    import torch
    from transformers import Qwen3OmniMoeForConditionalGeneration, Qwen3OmniMoeProcessor

    tokenizer = build_tokenizer(TOKENIZER)
    config = build_config(tokenizer)
    with torch.random.fork_rng():
        torch.manual_seed(TINY_RANDOM_SEED)
        model = Qwen3OmniMoeForConditionalGeneration(config)
        fill_uninitialised(model.talker, config.talker_config.initializer_range)
    save_tiny(staging, model, tokenizer, TOKENIZER, Qwen3OmniMoeProcessor, "tiny_random.py", TINY_RANDOM_VERSION)
