"""The Qwen2.5-Omni family adapter (3B, 7B; Whisper-style audio encoder, TMRoPE, DiT + BigVGAN talker)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .family import ModelFamily, UnsupportedFeatureError

# The model card: audio output misbehaves under any other system prompt, and text follows the same turn.
QWEN25_SYSTEM_PROMPT = ("You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of "
                        "perceiving auditory and visual inputs, as well as generating text and speech.")
# The processor pads (and by default truncates) every clip to the Whisper 30 s window.
WHISPER_WINDOW_SAMPLES = 30 * 16_000


@dataclass(frozen=True)
class Qwen25OmniFamily(ModelFamily):
    name: str = "qwen2.5-omni"
    title: str = "Qwen2.5-Omni"
    model_types: tuple[str, ...] = ("qwen2_5_omni",)
    system_prompt: str | None = QWEN25_SYSTEM_PROMPT
    has_captioner: bool = False
    has_thinking: bool = False
    # 25 audio tokens per second in a 32k context: 20 min is about 30k tokens.
    max_audio_s_per_call: float = 20 * 60.0
    reports_loading_info: bool = False

    def classes(self):
        from transformers import Qwen2_5OmniForConditionalGeneration, Qwen2_5OmniProcessor

        return Qwen2_5OmniForConditionalGeneration, Qwen2_5OmniProcessor

    def audio_processor_kwargs(self, audios: list[np.ndarray]) -> dict:
        # The encoder itself works in 2 s chunks of any count: keep long clips whole, pad all to one length.
        longest = max((len(a) for a in audios), default=0)
        return {"audio_kwargs": {"truncation": False, "max_length": max(WHISPER_WINDOW_SAMPLES, longest)}}

    def generate_ids(self, model, inputs, thinker_kwargs):
        # The top-level generate reads talker settings even for text output, so a thinker-only load
        # (the batched path) calls the thinker's own generate.
        return model.thinker.generate(**inputs, **thinker_kwargs)

    def check_windows(self, windows) -> None:
        if windows is not None:
            raise UnsupportedFeatureError(
                "--aut-window: Qwen2.5-Omni's Whisper-style audio encoder attends within fixed 2 s chunks, so its "
                "window cannot be set; drop --aut-window, or use a Qwen3-Omni model (its AuT encoder has one)")

    def speakers(self, omni) -> tuple[str, ...]:
        return tuple(omni.model.speaker_map)

    def voice_texts(self, omni, texts, speaker, options=None, on_audio=None):
        from .voice_qwen25 import voice_texts

        if on_audio is not None and len(texts) != 1:
            raise ValueError("streaming voices one text at a time")
        voiced = voice_texts(omni, texts, self.speaker_named(omni, speaker))
        if on_audio is not None:
            # token2wav (DiT + BigVGAN) renders a whole piece at once: it streams piece by piece.
            on_audio(voiced[0].waveform)
        return voiced


QWEN25_OMNI = Qwen25OmniFamily()
