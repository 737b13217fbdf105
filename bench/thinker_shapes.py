"""The 30B-A3B thinker at its released shapes with random bf16 weights, tiny-random's, and clips to feed them.

Shared by the GPU benchmarks (gpu_throughput.py): the recipe of `../shared/bench/gpu_thinker_baseline.py`
(ARCHITECTURE §6), 30 s clips of random log-mel in the Captioner's prompt layout.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The released Qwen3-Omni-30B-A3B thinker (ARCHITECTURE §2), as in the shared baseline.
FULL_TEXT = dict(vocab_size=152064, hidden_size=2048, intermediate_size=768, num_hidden_layers=48,
                 num_attention_heads=32, num_key_value_heads=4, head_dim=128, num_experts=128,
                 num_experts_per_tok=8, moe_intermediate_size=768, max_position_embeddings=65536,
                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                  "mrope_section": [24, 20, 20], "interleaved": True})
FULL_AUDIO = dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120,
                  output_dim=2048, num_mel_bins=128, n_window=50, n_window_infer=800)
FULL_VISION = dict(depth=27, hidden_size=1152, intermediate_size=4304, out_hidden_size=2048)
# <|im_start|> <|im_end|> <|audio_pad|> <|audio_start|> <|audio_end|> in the released tokenizer.
FULL_SPECIAL_IDS = dict(im_start=151644, im_end=151645, audio_pad=151646, audio_start=151647, audio_end=151648)


def import_project() -> None:
    """`omni_caption` from this checkout when it is not installed (the GPU machine gets a bare copy)."""
    try:
        import omni_caption.model  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO))
        import omni_caption

        omni_caption.__path__.append(str(REPO))  # the rooms (model/, ...) sit at the top of the repository


def full_thinker_config():
    from transformers import Qwen3OmniMoeThinkerConfig

    config = Qwen3OmniMoeThinkerConfig(text_config=FULL_TEXT, audio_config=FULL_AUDIO, vision_config=FULL_VISION)
    if not hasattr(config, "vision_start_token_id"):  # transformers 5.x thinker-only config lacks it
        config.vision_start_token_id = 151652
    return config


def build_thinker(config, device: str):
    """Random bf16 weights built where they will run (`meta`: shapes only, no memory)."""
    import torch
    from transformers import Qwen3OmniMoeThinkerForConditionalGeneration

    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3OmniMoeThinkerForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    return model.eval()


def tiny_thinker(cache_dir: Path | None):
    from omni_caption.model import LoadOptions, load_model

    omni = load_model("tiny-random", LoadOptions(device="cpu", cache_dir=cache_dir))
    tokens = omni.processor.tokenizer.convert_tokens_to_ids(
        ["<|im_start|>", "<|im_end|>", "<|audio_pad|>", "<|audio_start|>", "<|audio_end|>"])
    return omni.model.thinker, dict(zip(("im_start", "im_end", "audio_pad", "audio_start", "audio_end"), tokens))


def clip_inputs(thinker, special: dict, batch: int, clip_s: float) -> dict:
    """`batch` clips of random log-mel in the Captioner's prompt layout (audio only, no instruction)."""
    import torch
    from transformers.models.qwen3_omni_moe.modeling_qwen3_omni_moe import _get_feat_extract_output_lengths

    frames = int(clip_s * 100)
    n_audio = int(_get_feat_extract_output_lengths(torch.tensor(frames)).item())
    text = [special["im_start"], 872 % thinker.vocab_size, 198 % thinker.vocab_size]  # "user", "\n"
    ids = (text + [special["audio_start"]] + [special["audio_pad"]] * n_audio + [special["audio_end"], special["im_end"],
           198 % thinker.vocab_size, special["im_start"], 77091 % thinker.vocab_size, 198 % thinker.vocab_size])
    device, dtype = thinker.device, thinker.dtype
    input_ids = torch.tensor([ids] * batch, device=device)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
            "input_features": torch.randn(batch, thinker.config.audio_config.num_mel_bins, frames, device=device,
                                          dtype=dtype),
            "feature_attention_mask": torch.ones(batch, frames, device=device, dtype=torch.long)}


def clip_rows(thinker, special: dict, count: int, clip_s: float) -> list[dict]:
    """`count` single-clip inputs on the CPU, as the pipeline prepares them for the refill engine."""
    return [{k: v.cpu() for k, v in clip_inputs(thinker, special, 1, clip_s).items()} for _ in range(count)]


def sync(thinker) -> None:
    import torch

    if thinker.device.type == "cuda":
        torch.cuda.synchronize()
