"""What a model family must provide: the one interface the rest of the toolkit talks to.

Everything shared (prompts, left-padded batching, log-prob recording, token
caps, guards, the pipeline) is written once against this interface; an
adapter holds only what really differs between families: the transformers
classes, the system prompt the checkpoints expect, how the processor treats
long audio, how text-only generation is called, the audio encoder's window
control, and how the talker voices a given text.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


class UnsupportedFeatureError(ValueError):
    """A family cannot do what was asked; the message is one line and says what to use instead."""


@dataclass(frozen=True)
class ModelFamily(ABC):
    name: str  # as stored in labels and used by presets: "qwen3-omni", "qwen2.5-omni"
    title: str  # for messages: "Qwen3-Omni"
    model_types: tuple[str, ...]  # config.json `model_type` values of this family
    system_prompt: str | None  # sent when a prompt brings none (some checkpoints require theirs)
    has_captioner: bool  # a dedicated audio captioner exists (otherwise captions are prompted)
    has_thinking: bool  # a Thinking variant exists (reasoning traces)
    max_audio_s_per_call: float  # audio one thinker call can hear within its context
    # from_pretrained(output_loading_info=True) works (Qwen2.5-Omni's override breaks on it)
    reports_loading_info: bool = True

    @abstractmethod
    def classes(self) -> tuple[type, type]:
        """(model class, processor class) from transformers."""

    def audio_processor_kwargs(self, audios: list[np.ndarray]) -> dict:
        """Extra processor arguments so every clip is kept at full length."""
        return {}

    @abstractmethod
    def generate_ids(self, model, inputs: dict, thinker_kwargs: dict):
        """Text-only thinker generation; returns the sequences (prompt + new tokens)."""

    def encoder_windows(self, model, windows, feature_lens) -> contextlib.AbstractContextManager:
        """Apply audio-encoder attention windows (`AutWindows`) for one generate call."""
        self.check_windows(windows)
        return contextlib.nullcontext()

    def check_windows(self, windows) -> None:
        """Raise UnsupportedFeatureError if this family cannot honour `windows` (an AutWindows or a
        --aut-window value; None: the model's own)."""

    @abstractmethod
    def speakers(self, omni) -> tuple[str, ...]:
        """The talker's voices, as the model names them."""

    @abstractmethod
    def voice_texts(self, omni, texts: list[str], speaker: str, options=None, on_audio=None) -> list:
        """Speak each GIVEN text with the talker (teacher-forced thinker, no sampled text): VoicedText list.

        `options`: a VoiceOptions (None: defaults). `on_audio` (one text only): called with the audio as
        it is decoded; a family whose vocoder cannot stream calls it once with the whole waveform.
        """

    def speaker_named(self, omni, speaker: str) -> str:
        """The model's own spelling of `speaker` (case-insensitive), or VoicingError naming the choices."""
        from .voicing import VoicingError

        names = self.speakers(omni)
        for name in names:
            if name.lower() == speaker.strip().lower():
                return name
        raise VoicingError(f"unknown speaker {speaker!r}: {self.title}'s voices are {', '.join(names)}")
