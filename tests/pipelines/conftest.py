"""Fixtures shared by the pipeline tests."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from omni_caption.pipelines.span_reader import DecodedAudioCache


@pytest.fixture
def open_caches(monkeypatch):
    """Every DecodedAudioCache made from now on; call it for those still open."""
    made = []
    real = DecodedAudioCache.__init__

    def tracked(self, *args, **kwargs):
        real(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(DecodedAudioCache, "__init__", tracked)
    return lambda: [cache for cache in made if not cache.closed]


# No commas or inner full stops: espeak pauses at them, and only our inserted pauses are "known".
SENTENCES = [
    "Good morning and welcome to the weekly planning meeting.",
    "The first item is the budget for field recordings.",
    "We spent four thousand euros on microphones.",
    "Travel costs were lower than expected.",
    "Next is the transcription backlog.",
    "There are forty hours of interviews waiting.",
    "Most of them are in English and some in German.",
    "We will run them through the pipeline tonight.",
    "Please review the captions tomorrow morning.",
    "Any questions before we move on?",
    "The second item is the new archive server.",
    "It arrives next week and needs a rack slot.",
    "Who can help with the installation?",
    "That is all for today.",
]


@pytest.fixture(scope="session")
def speech_with_known_pauses(tmp_path_factory):
    """(a 22.05 kHz WAV of espeak sentences, their (start, end) times, the pauses between them)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: the set-up command installs it (apt-get install -y espeak-ng)")
    folder = tmp_path_factory.mktemp("espeak")
    rng = np.random.default_rng(7)
    pieces, speech, pauses, t = [], [], [], 0.0
    for i, sentence in enumerate(SENTENCES):
        wav = folder / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us" if i % 2 else "en-gb", "-s", "160", "-w", str(wav), sentence],
                       check=True)
        audio, rate = sf.read(wav, dtype="float32")
        assert rate == 22050
        # Trim espeak's own leading/trailing silence so the known pauses are exactly ours.
        voiced = np.nonzero(np.abs(audio) > 1e-3)[0]
        audio = audio[voiced[0]:voiced[-1] + 1]
        speech.append((t, t + len(audio) / rate))
        pieces.append(audio)
        t += len(audio) / rate
        if i < len(SENTENCES) - 1:
            gap = float(rng.uniform(0.5, 1.5))
            pauses.append((t, t + gap))
            pieces.append(np.zeros(int(gap * rate), dtype=np.float32))
            t += gap
    path = folder / "meeting.wav"
    sf.write(path, np.concatenate(pieces), 22050)
    return path, speech, pauses
