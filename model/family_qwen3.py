"""The Qwen3-Omni family adapter (Captioner, Thinking, Instruct; AuT audio encoder)."""

from __future__ import annotations

from dataclasses import dataclass

from . import aut_windows
from .family import ModelFamily


@dataclass(frozen=True)
class Qwen3OmniFamily(ModelFamily):
    name: str = "qwen3-omni"
    title: str = "Qwen3-Omni"
    model_types: tuple[str, ...] = ("qwen3_omni_moe",)
    system_prompt: str | None = None
    has_captioner: bool = True
    has_thinking: bool = True
    # AuT gives 13 tokens per second: 40 min is about 31k tokens, the practical ceiling of one call.
    max_audio_s_per_call: float = 40 * 60.0

    def classes(self):
        from transformers import Qwen3OmniMoeForConditionalGeneration, Qwen3OmniMoeProcessor

        return Qwen3OmniMoeForConditionalGeneration, Qwen3OmniMoeProcessor

    def generate_ids(self, model, inputs, thinker_kwargs):
        # The top-level generate routes `thinker_*` kwargs; return_audio=False keeps batching possible.
        return model.generate(**inputs, return_audio=False, **{f"thinker_{k}": v for k, v in thinker_kwargs.items()})

    def encoder_windows(self, model, windows, feature_lens):
        return aut_windows.applied(model, windows, feature_lens)

    def speakers(self, omni):
        from .voice_qwen3 import speakers

        return speakers(omni)

    def voice_texts(self, omni, texts, speaker, options=None, on_audio=None):
        from .generation import Prompt
        from .voice_qwen3 import READ_ALOUD_REQUEST, voice_texts
        from .voicing import VoiceOptions

        return voice_texts(omni, texts, self.speaker_named(omni, speaker), Prompt(text=READ_ALOUD_REQUEST),
                           options or VoiceOptions(), on_audio)


QWEN3_OMNI = Qwen3OmniFamily()
