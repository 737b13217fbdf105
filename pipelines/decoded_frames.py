"""Sequential decoding through torchcodec, frame by frame, past damaged packets (AudioFile's pass)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .decode import SAMPLE_RATE, DecodeError, short_reason

DAMAGED_PACKETS_IN_A_ROW = 100  # then the rest is taken as missing, not damaged
LOST_SILENCE_MIN_S = 0.01  # a resampler holds back about 1 ms: less than this is no lost packet
LOST_SILENCE_MAX_S = 10.0  # a bigger jump is the timestamps' own (a broadcast capture's), not lost audio


class DecodedFrames:
    """Frame by frame from the start: (seconds since the first frame, mono float32 samples).

    Times count from the first audio sample, not by the stream's timestamps: an
    MPEG-TS file starts at 1.4 s or anywhere (a broadcast capture), an mp3 after
    its encoder delay. Counted from the first sample, a time is a sample index
    over the rate, as in WhisperX, Lhotse, soundfile and `ffmpeg -ss` on an
    audio file; segments lie within the recording's duration; and a player,
    which also shows such a file from 0, shows a subtitle at its time.

    The public range API seeks on every call, which is ten times slower for a
    linear pass and gets slower along the file for Ogg/Opus. torchcodec's core
    `get_next_frame` op decodes sequentially; it is not public, so it is used
    here alone, and tests/pipelines/test_decode.py fails if it disappears.

    A damaged packet in the middle (a bad sector, a dropped piece of a download,
    junk between MP3s joined end to end) is skipped and decoding goes on, as the
    `ffmpeg` command does: torchcodec stopped there, and the rest of a 40-minute
    recording was lost. The time the lost packets held, by the timestamps of
    the packet after them, is kept as silence, so what follows keeps its time
    (exactly in MP4; a raw MP3's demuxer counts one lost frame where damage took
    several, so there it may come some 50 ms early); `skipped` lists where.
    Damage a demuxer drops without a decode error (an Ogg page failing its
    checksum, a Matroska cluster) goes unseen here, as it does in FFmpeg.

    A decode error with no audio after it ends the stream there, with the
    reason in `stopped_by`: a FLAC or MP4 cut short (an interrupted copy or
    download) fails at its last packet, and what came before it is good audio.
    An error before any audio is the file's error.
    """

    def __init__(self, decoder, path: Path, channel: int | None = None):
        self.decoder = decoder
        self.path = path
        self.channel = channel  # the one heard (AudioFile.heard_channel); None: their mean
        self.stopped_by: str | None = None
        self.skipped: list[tuple[float, float]] = []  # (start, end) seconds of skipped packets, silence now

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        from torchcodec._core import ops as core

        first_pts: float | None = None
        produced = 0  # samples given so far
        damage: str | None = None  # why the packets since the last frame could not be decoded
        failures = 0
        while True:
            try:
                samples, pts, _duration = core.get_next_frame(self.decoder._decoder)
            except IndexError:  # "no more frames left to decode"
                self.stopped_by = damage
                return
            except RuntimeError as exc:
                if first_pts is None:
                    raise DecodeError(short_reason(exc, self.path)) from exc
                damage, failures = short_reason(exc, self.path), failures + 1
                if failures >= DAMAGED_PACKETS_IN_A_ROW:
                    self.stopped_by = damage
                    return
                continue
            if samples.shape[-1] == 0:  # an mp3's encoder-delay frame, all of it trimmed: no time of its own
                continue
            first_pts = float(pts) if first_pts is None else first_pts
            if damage is not None:
                lost = round((float(pts) - first_pts) * SAMPLE_RATE) - produced
                if not LOST_SILENCE_MIN_S * SAMPLE_RATE <= lost <= LOST_SILENCE_MAX_S * SAMPLE_RATE:
                    lost = 0
                self.skipped.append((produced / SAMPLE_RATE, (produced + lost) / SAMPLE_RATE))
                if lost:
                    yield produced / SAMPLE_RATE, np.zeros(lost, dtype=np.float32)
                    produced += lost
                damage, failures = None, 0
            if samples.shape[0] == 1:
                mono = samples.numpy().reshape(-1)
            else:
                mono = (samples[self.channel] if self.channel is not None else samples.mean(dim=0)).numpy()
            yield float(pts) - first_pts, mono
            produced += len(mono)
