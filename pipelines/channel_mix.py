"""Which channel a recording is heard through, where mixing its channels to mono would cancel them.

A stereo file whose channels are one signal and its inverse (a balanced microphone
wired to both inputs with one leg reversed, a badly exported M/S pair) mixes to
silence: every row came out as digital silence (`silent:source`) and no model heard
a word. Such a file is heard through its loudest channel instead; any other
recording is mixed as before.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PROBE_S = 30.0  # seconds of sound compared (a wiring fault holds for the whole file): about 0.1 s of decoding
PROBE_MAX_S = 300.0  # read at most this far for them, past a silent lead-in
CANCELLED_SHARE = 0.1  # the mix's level under a tenth (-20 dB) of its loudest channel's: they cancel
MIN_CHANNEL_RMS = 1e-3  # quieter channels (-60 dBFS) are silence, which mixes to silence anyway


def cancelling_channel(samples: np.ndarray) -> int | None:
    """The loudest channel of `samples` (channels x time) where their mean cancels, else None."""
    if samples.ndim != 2 or samples.shape[0] < 2 or samples.shape[1] == 0:
        return None
    samples = np.nan_to_num(samples.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    channel_rms = np.sqrt(np.mean(samples ** 2, axis=1))
    loudest = int(np.argmax(channel_rms))
    if channel_rms[loudest] < MIN_CHANNEL_RMS:
        return None
    mix_rms = float(np.sqrt(np.mean(samples.mean(axis=0) ** 2)))
    return loudest if mix_rms < CANCELLED_SHARE * channel_rms[loudest] else None


def probe_cancelling_channel(path: Path, sample_rate: int) -> int | None:
    """`cancelling_channel` of the file's first PROBE_S seconds of sound (frames where a channel is above
    silence), all channels decoded; None where they cannot be read (the pass that follows says why, as ever)."""
    from torchcodec._core import ops as core

    from .decode import audio_decoder

    try:
        decoder = audio_decoder(path, sample_rate=sample_rate)
        frames, kept, read = [], 0, 0
        while kept < PROBE_S * sample_rate and read < PROBE_MAX_S * sample_rate:
            try:
                samples, _pts, _duration = core.get_next_frame(decoder._decoder)
            except IndexError:  # the end
                break
            samples = samples.numpy()
            read += samples.shape[-1]
            if samples.size and np.sqrt(np.mean(samples.astype(np.float64) ** 2, axis=-1)).max() >= MIN_CHANNEL_RMS:
                frames.append(samples)
                kept += samples.shape[-1]
    except Exception:  # a damaged packet, a layout torchcodec refuses: mixed as before
        return None
    if not frames or len({frame.shape[0] for frame in frames}) != 1:
        return None
    return cancelling_channel(np.concatenate(frames, axis=1))
