"""Audio streams whose channels or sample rate change partway, and the ffmpeg-command decoder that takes them
(and WAVs holding more than their header declares, see declared_length.py).

MP3s joined end to end (a podcast's intro at 44.1 kHz stereo and its talk at
22.05 kHz mono), radio captures and broadcast streams change format mid-stream.
torchcodec sets its resampler up from the first frame and keeps it: a later
frame of another rate came out at the wrong speed (a 10 s file decoded as
7.6 s, with no error), and one with fewer channels crashed the whole process
(SIGSEGV inside swresample). The `ffmpeg` command reconfigures its filters at
each change, so such a stream goes through it instead.

Finding one costs a pass with no conversion, which cannot crash (the codecs
that change format decode to planar float, so torchcodec converts nothing):
about a third of the decode pass's time, 4 s per hour of 128 kb/s MP3 here
(bench/format_scan.py). Lossless and PCM codecs cannot change format in a
stream, so their files are not scanned.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

# Codecs whose streams can change format partway; FFmpeg decodes each of them to planar float. Not Opus: it
# always decodes at 48 kHz, and two Ogg Opus files joined (stereo, then mono) came out whole here, while
# Vorbis so joined crashed torchcodec; its decode is also the slowest, so a scan would cost the most there.
CHANGEABLE_CODECS = frozenset({"mp1", "mp2", "mp3", "aac", "ac3", "eac3", "vorbis", "wmav1", "wmav2", "wmapro",
                               "dts"})
RATE_TOLERANCE = 0.05  # container timestamps round a frame's duration (to 1 ms in Matroska): about 2% at worst
MIN_FRAME_S = 0.01  # shorter frames' rounded durations say too little about their rate
MAX_DAMAGED_PACKETS = 100  # a scan goes past damaged packets, as decoding does, but not for ever


def stream_changes(path: Path, codec: str | None) -> str | None:
    """How the audio stream of `path` changes format partway ('its channels change from 2 to 1 at 5.0 s'),
    or None where it keeps one format (or its codec cannot change it)."""
    if codec not in CHANGEABLE_CODECS:
        return None
    from torchcodec._core import ops as core

    from .decode import audio_decoder

    try:
        decoder = audio_decoder(path)  # no sample_rate or num_channels: nothing is converted
    except Exception:
        return None  # the decode that follows says why the file cannot be read
    first_channels: int | None = None
    first_rate: float | None = None  # samples per second of the first frame long enough to tell
    other_rates = 0  # frames in a row at another rate: one alone is a trimmed last frame (AAC in MP4)
    changed_at = 0.0
    damaged = 0
    while True:
        try:
            samples, pts, duration = core.get_next_frame(decoder._decoder)
        except IndexError:
            return None
        except RuntimeError:
            damaged += 1
            if damaged > MAX_DAMAGED_PACKETS:
                return None
            continue
        channels, duration = int(samples.shape[0]), float(duration)
        rate = samples.shape[-1] / duration if duration >= MIN_FRAME_S else None
        first_channels = channels if first_channels is None else first_channels
        first_rate = rate if first_rate is None else first_rate
        if channels != first_channels:
            return f"its channels change from {first_channels} to {channels} at {float(pts):.1f} s"
        if rate is not None:
            other_rates = other_rates + 1 if abs(rate - first_rate) > RATE_TOLERANCE * first_rate else 0
            changed_at = float(pts) if other_rates == 1 else changed_at
            if other_rates == 2:
                return f"its sample rate changes from {first_rate:.0f} to {rate:.0f} Hz at {changed_at:.1f} s"


class FfmpegFrames:
    """(seconds since the first sample, mono float32 samples at `sample_rate`) from the `ffmpeg` command,
    as `DecodedFrames` gives them from torchcodec, for a stream that changes format partway.

    FFmpeg skips a damaged packet and goes on; an error that ends its decode after some audio ends the
    stream there, with the reason in `stopped_by`, as in `DecodedFrames`.
    """

    BLOCK_SAMPLES = 1 << 16

    def __init__(self, path: Path, stream_index: int | None, sample_rate: int, why: str,
                 input_options: tuple[str, ...] = ()):
        self.path = path
        self.stream_index = stream_index
        self.sample_rate = sample_rate
        self.why = why  # what makes the stream need the command, for an error that names it
        self.input_options = input_options  # the demuxer's, before -i (a WAV's -ignore_length 1)
        self.stopped_by: str | None = None
        self.skipped: list[tuple[float, float]] = []  # FFmpeg skips damaged packets without saying where

    def _command(self, executable: str) -> list:
        stream = f"0:{self.stream_index}" if self.stream_index is not None else "0:a:0"
        # `file:` so that a name like `pipe:1` or `http:x` is read as the file it is; bytes for any name.
        source = b"file:" + os.fsencode(Path(self.path).absolute())
        return [executable, "-nostdin", "-hide_banner", "-loglevel", "error", *self.input_options, "-i", source,
                "-map", stream,
                "-ac", "1", "-ar", str(self.sample_rate), "-f", "f32le", "pipe:1"]

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        from .decode import DecodeError

        executable = shutil.which("ffmpeg")
        if executable is None:
            raise DecodeError(f"{self.why}, which needs the ffmpeg command to decode, and it is not on PATH")
        produced = 0
        with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a damaged stream's many lines cannot block it
            process = subprocess.Popen(self._command(executable), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=errors)
            try:
                while chunk := process.stdout.read(self.BLOCK_SAMPLES * 4):
                    samples = np.frombuffer(chunk[:len(chunk) // 4 * 4], dtype=np.float32).copy()
                    yield produced / self.sample_rate, samples
                    produced += len(samples)
            except BaseException:  # the reader stopped early (a span reader starting over), or was stopped
                process.kill()
                process.wait()
                raise
            finally:
                process.stdout.close()
            returncode = process.wait()
            if returncode == 0:
                return
            errors.seek(0)
            lines = errors.read().decode("utf-8", "replace").strip().splitlines()
            reason = (f"ffmpeg: {lines[-1].strip()}" if lines
                      else f"ffmpeg stopped by signal {-returncode}" if returncode < 0
                      else f"ffmpeg exited with status {returncode}")
        if not produced:
            raise DecodeError(reason)
        self.stopped_by = reason
