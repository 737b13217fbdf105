"""A complete tiny Qwen2.5-Omni with random weights, built and saved locally (`tiny-random-2.5`).

Every part of the real architecture is present: a thinker with the
Whisper-style audio encoder (2 s chunks) and a dense Qwen2 text model
(TMRoPE positions), the dual-track talker, and token2wav (a sliding-window
DiT to mel, then BigVGAN to 24 kHz), plus a `spk_dict.pt` with the two
released speakers (Chelsie, Ethan) that `from_pretrained` requires. Tokenizer,
chat template, processor and the atomic cached build are shared with the
Qwen3 builder (`tiny_build.py`); only the config and token names differ.
Its output is nonsense by construction: it exists for tests and the offline demo.
"""

from __future__ import annotations

from pathlib import Path

from .tiny_build import TINY_RANDOM_SEED, TokenizerSpec, build_tokenizer, cached_build, save_tiny

# Bump when the build changes so old caches are not reused.
TINY_RANDOM_25_VERSION = "1"

TEXT_VOCAB_SIZE = 512
THINKER_HIDDEN = 64
CODEBOOK_SIZE = 64  # codec ids 0..63; the four talker control ids follow
# Each speaker's text-track start token is a thinker id the tokenizer never produces, as in the release.
SPEAKERS = {"Chelsie": TEXT_VOCAB_SIZE - 2, "Ethan": TEXT_VOCAB_SIZE - 1}
MEL_DIM = 80
SPEAKER_EMBEDDING_DIM = 16  # the DiT's enc_emb_dim: each speaker's `cond` vector
REFERENCE_MEL_FRAMES = 30

TOKENIZER = TokenizerSpec(
    special_tokens=(
        "<|endoftext|>", "<|im_start|>", "<|im_end|>",
        "<|audio_bos|>", "<|audio_eos|>", "<|AUDIO|>",
        "<|vision_bos|>", "<|vision_eos|>", "<|IMAGE|>", "<|VIDEO|>",
        "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>",
    ),
    named_tokens={
        "image_token": "<|IMAGE|>", "audio_token": "<|AUDIO|>", "video_token": "<|VIDEO|>",
        "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>",
        "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>",
    },
    max_ids=min(SPEAKERS.values()),
)


def tiny_random_25_dir(cache_dir: Path) -> Path:
    """The folder holding tiny-random-2.5, building it on first use."""
    return cached_build(Path(cache_dir) / f"tiny-random-2.5-v{TINY_RANDOM_25_VERSION}", _build_into)


def build_config(tokenizer):
    from transformers import Qwen2_5OmniConfig

    tid = tokenizer.convert_tokens_to_ids
    mrope = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [2, 3, 3]}
    media_ids = dict(
        audio_token_index=tid("<|AUDIO|>"), image_token_index=tid("<|IMAGE|>"), video_token_index=tid("<|VIDEO|>"),
        audio_start_token_id=tid("<|audio_bos|>"), audio_end_token_id=tid("<|audio_eos|>"),
    )
    # No pad_token_id here: its embedding row would start at zero, and a zero pad is invisible even when the
    # attention mask is wrong, so the batching parity tests could not fail.
    text = dict(vocab_size=TEXT_VOCAB_SIZE, hidden_size=THINKER_HIDDEN, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, rope_parameters=mrope, initializer_range=0.5,
                eos_token_id=tid("<|im_end|>"))
    # output_dim must equal the thinker hidden size: audio features replace <|AUDIO|> embeddings.
    audio = dict(d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64,
                 output_dim=THINKER_HIDDEN, num_mel_bins=128, n_window=100, max_source_positions=1500,
                 initializer_range=0.5)
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=THINKER_HIDDEN,
                  fullatt_block_indexes=[0])
    # The thinker config class lacks vision_start_token_id, but its position code (get_rope_index) reads it.
    # A wide init (it governs every thinker weight) makes greedy outputs depend visibly on the audio.
    thinker = dict(text_config=text, audio_config=audio, vision_config=vision, user_token_id=tid("user"),
                   vision_start_token_id=tid("<|vision_bos|>"), initializer_range=0.5, **media_ids)
    cb = CODEBOOK_SIZE
    # The talker reads thinker embeddings + last hidden states (embedding_size) and projects them down.
    talker = dict(
        vocab_size=cb + 4, embedding_size=THINKER_HIDDEN, hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=16, rope_parameters=mrope,
        tts_codec_pad_token_id=cb, tts_codec_start_token_id=cb + 1, tts_codec_end_token_id=cb + 2,
        tts_codec_mask_token_id=cb + 3, tts_text_pad_token_id=tid("<tts_pad>"),
        tts_text_start_token_id=tid("<tts_text_bos>"), tts_text_end_token_id=tid("<tts_text_eod>"),
        vision_start_token_id=tid("<|vision_bos|>"), vision_end_token_id=tid("<|vision_eos|>"), **media_ids,
    )
    # num_embeds covers every id the random talker can emit, control ids included, so the DiT never indexes
    # past its table. BigVGAN keeps the release's upsampling (x240: 100 mel frames/s -> 24 kHz).
    dit = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, head_dim=16, ff_mult=2, emb_dim=16,
               block_size=8, look_ahead_layers=[1], look_backward_layers=[0], num_embeds=cb + 4, mel_dim=MEL_DIM,
               enc_emb_dim=SPEAKER_EMBEDDING_DIM, enc_dim=16, enc_channels=[16, 16, 16, 16, 48],
               enc_attention_channels=8, enc_se_channels=8)
    bigvgan = dict(mel_dim=MEL_DIM, upsample_initial_channel=128, resblock_kernel_sizes=[3],
                   resblock_dilation_sizes=[[1, 3, 5]])
    return Qwen2_5OmniConfig(thinker_config=thinker, talker_config=talker,
                             token2wav_config={"dit_config": dit, "bigvgan_config": bigvgan},
                             enable_audio_output=True)


def build_speakers() -> dict:
    """`spk_dict.pt`: per speaker, its text-track start token, DiT speaker vector and reference mel."""
    import torch

    generator = torch.Generator().manual_seed(TINY_RANDOM_SEED)
    return {name: {"bos_token": bos,
                   "cond": torch.randn(1, SPEAKER_EMBEDDING_DIM, generator=generator),
                   "ref_mel": torch.randn(1, REFERENCE_MEL_FRAMES, MEL_DIM, generator=generator)}
            for name, bos in SPEAKERS.items()}


def _build_into(staging: Path) -> None:
    import torch
    from transformers import Qwen2_5OmniForConditionalGeneration, Qwen2_5OmniProcessor

    tokenizer = build_tokenizer(TOKENIZER)
    config = build_config(tokenizer)
    with torch.random.fork_rng():
        torch.manual_seed(TINY_RANDOM_SEED)
        model = Qwen2_5OmniForConditionalGeneration(config)
    save_tiny(staging, model, tokenizer, TOKENIZER, Qwen2_5OmniProcessor, "tiny_random_25.py", TINY_RANDOM_25_VERSION)
    torch.save(build_speakers(), staging / "spk_dict.pt")  # from_pretrained refuses a folder without it
