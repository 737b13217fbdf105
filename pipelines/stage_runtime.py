"""Per-stage decoding set-up: which decoder runs the loaded model and how many segments go per batch."""

from __future__ import annotations

from omni_caption.captioner import TaskConfig
from omni_caption.model import OmniModel
from omni_caption.model.decode_runtime import DecodeRuntime, decode_runtime, prompt_tokens_for

SUMMARY_AUDIO_S = 40 * 60  # a summary call hears (or reads the captions of) up to 40 minutes


def stage_runtime(omni: OmniModel, configs: list[TaskConfig], options) -> DecodeRuntime:
    """Sized for the stage's longest prompt and largest token cap, once its model has loaded.

    Summaries keep transformers' `generate` (few, long, text-heavy calls); segment tasks use
    `options.decoder` (auto: the static engine on CUDA).
    """
    is_summary = any(c.name == "summary" for c in configs)
    longest_s = SUMMARY_AUDIO_S if is_summary else options.max_chunk_s
    text_tokens = max(len(c.question or "") for c in configs) // 2  # a question adds a few tokens per word
    return decode_runtime(omni, "plain" if is_summary else options.decoder, options.batch_size,
                          prompt_tokens_for(longest_s, text_tokens), max(c.max_new_tokens for c in configs))
