"""What voicing a given text returns, whatever the model family.

Every family's talker speaks a text it is *given* (a stored summary, a
caption) rather than one it samples itself; this module holds the shared
result type so the pipeline never depends on one family's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

VOICE_SAMPLE_RATE = 24_000  # both Qwen3-Omni code2wav and Qwen2.5-Omni token2wav emit 24 kHz


@dataclass(frozen=True)
class VoiceOptions:
    do_sample: bool = True  # the model card's talker sampling; greedy tends to loop
    seed: int = 0
    max_codes: int | None = None  # None: from the text length (slow speech plus a margin)
    min_codes: int = 0  # benchmarks only: random weights stop anywhere, a floor fixes the work
    stream_chunk_codes: int = 12  # ~1 s of audio per streamed chunk (Qwen3-Omni's causal code2wav)
    stream_left_context: int = 25  # codes of left context code2wav sees per streamed chunk


class VoicingError(ValueError):
    """The text cannot be voiced (empty text, unknown speaker, no talker); one line for the user."""


@dataclass(frozen=True)
class VoicedText:
    """One text spoken by the talker."""

    text: str
    speaker: str
    waveform: np.ndarray = field(repr=False)  # float32, mono, in [-1, 1]
    sample_rate: int
    talker_text_ids: tuple[int, ...] = field(repr=False)  # thinker token ids of the text the talker conditioned on
    num_codes: int  # codec frames the talker produced

    @property
    def duration_s(self) -> float:
        return len(self.waveform) / self.sample_rate
