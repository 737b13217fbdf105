"""Decode any container FFmpeg reads to 16 kHz mono float32, through torchcodec."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from omni_caption.file_kinds import is_html_page, is_media, is_parquet_file, is_text_file, special_file_kind

from .changing_streams import FfmpegFrames, stream_changes
from .declared_length import (MP4_WITHOUT_INDEX, declared_seconds, mp4_without_index, ogg_unfinished,
                              wav_data_past_its_size)

SAMPLE_RATE = 16_000


NO_AUDIO_STREAM = "no audio stream (the file has only video or other streams)"


FFMPEG_MISSING = ("FFmpeg's shared libraries (version 4 to 8) cannot be loaded, so no recording can be decoded: "
                  "install FFmpeg (apt-get install -y ffmpeg, or conda install -c conda-forge 'ffmpeg<9')")


class DecodeError(RuntimeError):
    """The file could not be decoded; the message is one line for the error row."""


class DecodingUnavailable(RuntimeError):
    """No recording can be decoded on this machine: the run stops before it starts (why_torchcodec_failed)."""


def why_torchcodec_failed(error: str) -> str:
    """One line for torchcodec's page-long "Could not load libtorchcodec". It tries FFmpeg 8 down to 4, so the
    libraries of FFmpeg versions not installed are always missing; another missing library is the cause. On
    Debian and Ubuntu that is libpython3.X.so.1.0, which their Python lacks unless libpython3-dev is installed
    (torchcodec issue #1164): FFmpeg was there, and FFMPEG_MISSING would have sent the user to install it again."""
    missing = re.findall(r"(\S+\.so[\w.]*): cannot open shared object file", error)
    others = [name for name in missing if not re.match(r"lib(av|sw|postproc)", Path(name).name)]
    if not others:
        return FFMPEG_MISSING
    if Path(others[0]).name.startswith("libpython"):
        return (f"torchcodec needs {others[0]}, Python's shared library, which Debian and Ubuntu ship apart "
                "from Python: apt-get install -y libpython3-dev")
    return f"torchcodec cannot load {others[0]}, so no recording can be decoded: install what provides it"


def check_decoding_available() -> None:
    """Before a run decodes anything. Without FFmpeg (a `pip install` with no `apt-get install ffmpeg`) every
    recording became an error row holding torchcodec's page-long loading traceback, and a rerun after
    installing FFmpeg kept those rows as done."""
    try:
        import torchcodec.decoders  # noqa: F401 - importing it loads libtorchcodec, and FFmpeg's libraries with it
    except Exception as exc:
        raise DecodingUnavailable(why_torchcodec_failed(str(exc))) from exc


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32, mono, SAMPLE_RATE
    sample_rate: int = SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    def slice(self, start_s: float, end_s: float) -> np.ndarray:
        return self.samples[int(round(start_s * self.sample_rate)):int(round(end_s * self.sample_rate))]


def short_reason(exc: Exception, path: Path) -> str:
    # torchcodec prefixes C++ source locations and repeats the path; keep the reason.
    text = " ".join(str(exc).split()) or type(exc).__name__
    if text.startswith("Could not load libtorchcodec"):  # a Ray worker without FFmpeg, where the driver has it
        return why_torchcodec_failed(str(exc))
    if ".cpp:" in text:
        text = text.split(".cpp:", 1)[1].split(", ", 1)[-1]
    text = text.replace(f"{path}", "").replace(": ", " ").strip()
    if "best audio stream is unknown" in text:  # torchcodec's words for a container with no audio track
        return NO_AUDIO_STREAM
    if text.startswith("Could not open input file"):
        if is_parquet_file(path):
            return PARQUET_NOT_AUDIO
        if is_html_page(path):
            return HTML_NOT_AUDIO
        if not is_media(path) and is_text_file(path):  # named as a recording, it is no list: FFmpeg's words
            return TEXT_NOT_AUDIO
        if mp4_without_index(path):
            return MP4_WITHOUT_INDEX
        detail = text.removeprefix("Could not open input file").strip()
        return f"FFmpeg cannot read it as audio or video ({detail or 'unknown format'})"
    return text


PARQUET_NOT_AUDIO = "a Parquet file, not a recording: omni-caption query, search, info or export read a dataset"
TEXT_NOT_AUDIO = "a text file, not a recording: a list of recordings, one per line, is read with --files-from LIST"
HTML_NOT_AUDIO = "an HTML page, not audio: a download that failed saves the server's error page under the file's name"


def audio_decoder(path: str | Path, **options):
    """A torchcodec AudioDecoder for `path`, whatever bytes its name holds.

    torchcodec passes a path to C++ as UTF-8, which a name that is not (a Latin-1
    name from an old share) cannot be; such a file is handed over open instead.
    """
    from torchcodec.decoders import AudioDecoder

    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return AudioDecoder(open(path, "rb"), **options)  # noqa: SIM115 - the decoder owns it from here
    return AudioDecoder(name, **options)


def decode_audio(path: str | Path) -> DecodedAudio:
    """The whole recording at once (AudioFile reads it in pieces)."""
    source = AudioFile(path)
    if source.command_reason or not source.torchcodec_mixes or source.heard_channel is not None:
        audio = np.concatenate([block for _start_s, block in source.blocks()])
        return DecodedAudio(audio)
    try:
        samples = source._decoder.get_all_samples().data
    except Exception as exc:  # torchcodec raises RuntimeError/ValueError with C++ context
        raise DecodeError(short_reason(exc, source.path)) from exc
    mono = samples.mean(dim=0) if samples.ndim == 2 else samples
    audio = mono.float().numpy()
    if audio.size == 0:
        raise DecodeError("no audio samples decoded (no audio stream, or zero length)")
    if not np.isfinite(audio).all():
        raise DecodeError("decoded audio contains NaN or infinite samples")
    return DecodedAudio(np.ascontiguousarray(audio))


def _other_audio_streams(decoder) -> int:
    """How many audio streams the file has besides the one decoded (FFmpeg's default): a multi-track OBS or
    camera recording, a film's dubs. Read from the header the decoder parsed already; 0 where it cannot say."""
    from torchcodec._core import AudioStreamMetadata, get_container_metadata

    try:
        streams = get_container_metadata(decoder._decoder).streams
    except Exception:  # a private API of torchcodec's: a changed one costs the warning, not the file
        return 0
    return max(sum(isinstance(stream, AudioStreamMetadata) for stream in streams) - 1, 0)


class AudioFile:
    """A recording decoded on demand: in blocks for one pass, or any span by recording time.

    Spans come from a sequential decode, not torchcodec's range API, which decodes from the stream's
    start for any span not after the last and gives samples shifted by a few ms that depend on what was
    read before (pipelines/span_reader.py).

    Nothing holds the whole waveform, so memory does not grow with length.
    Times count from the first audio sample (see DecodedFrames).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        special = special_file_kind(self.path)
        if special:  # FFmpeg would wait for a pipe's writer for ever
            raise DecodeError(f"it is {special}, not a regular file")
        if self.path.stat().st_size == 0:
            raise DecodeError("empty file (0 bytes)")
        try:
            self._decoder = audio_decoder(self.path, sample_rate=SAMPLE_RATE, num_channels=1)
            metadata = self._decoder.metadata
        except Exception as exc:
            raise DecodeError(short_reason(exc, self.path)) from exc
        self.duration_hint_s = getattr(metadata, "duration_seconds", None)
        self._codec = getattr(metadata, "codec", None)
        self._stream_index = getattr(metadata, "stream_index", None)
        self._channels = getattr(metadata, "num_channels", None) or 1
        self.other_audio_streams = _other_audio_streams(self._decoder)
        self._mixes: bool | None = None  # whether torchcodec can mix the channels to mono, once asked
        self._command: tuple[str | None, tuple[str, ...]] | None = None  # command_reason, its input options
        # Set by a whole pass of `blocks`: why the audio ends before the file says it should, or None; and
        # the (start, end) seconds of damage the pass got past: packets skipped (DecodedFrames), samples
        # that were NaN or infinite (zero_nonfinite), silence now.
        self.ends_early: str | None = None
        self.damaged: tuple[tuple[float, float], ...] = ()
        self._spans = None  # the sequential reader behind `read`, made on first use

    @property
    def command_reason(self) -> str | None:
        """Why the ffmpeg command decodes this file instead of torchcodec, or None: its stream changes
        channels or sample rate partway (changing_streams.py), or it is a WAV holding more audio than its
        header declares (declared_length.py), which the command reads to its end."""
        if self._command is None:
            past_size = wav_data_past_its_size(self.path)
            reason = past_size or stream_changes(self.path, self._codec)
            self._command = (reason, ("-ignore_length", "1") if past_size else ())
        return self._command[0]

    def frames(self):
        """A new sequential pass over the whole stream: (seconds since the first sample, samples) frames, and
        `stopped_by` once it has ended: through torchcodec, or the ffmpeg command (`command_reason`). NaN or
        infinite samples come as they are: `blocks` and `read` set them to 0."""
        if self.command_reason:
            return FfmpegFrames(self.path, self._stream_index, SAMPLE_RATE, self.command_reason,
                                input_options=self._command[1])
        channel = self.heard_channel
        # Else DecodedFrames averages the channels, or takes the one heard.
        mono = {"num_channels": 1} if channel is None and self.torchcodec_mixes else {}
        try:
            decoder = audio_decoder(self.path, sample_rate=SAMPLE_RATE, **mono)
        except Exception as exc:
            raise DecodeError(short_reason(exc, self.path)) from exc
        from .decoded_frames import DecodedFrames

        return DecodedFrames(decoder, self.path, channel)

    @cached_property
    def heard_channel(self) -> int | None:
        """The one channel the recording is heard through where its channels cancel in a mono mix (one the
        other inverted: channel_mix.py), else None (all of them mixed). The same for every AudioFile of the
        file (a span reader, another process), as each probes the same opening seconds."""
        from .channel_mix import probe_cancelling_channel

        if self._channels > 1 and not self.command_reason:
            return probe_cancelling_channel(self.path, SAMPLE_RATE)
        return None

    @property
    def torchcodec_mixes(self) -> bool:
        """Whether torchcodec can mix the channels down to mono. Not 9, 12 or 32 channels (a field recorder's
        poly WAV, a microphone array): no standard layout has them, so FFmpeg's resampler refused the mix
        ('not enough information'), and the file was an error row blaming 'a buggy FFmpeg version'. Their
        mean is taken instead. Asked of files of more than two channels only, by decoding one frame."""
        if self._mixes is None:
            self._mixes = True
            if self._channels > 2:
                from torchcodec._core import ops as core

                try:
                    core.get_next_frame(audio_decoder(self.path, sample_rate=SAMPLE_RATE, num_channels=1)._decoder)
                except RuntimeError:
                    self._mixes = False
                except IndexError:  # no frame at all: the pass says so
                    pass
        return self._mixes

    def __reduce__(self):
        # A decoder cannot be pickled: another process (a Ray actor) reopens the file by its path.
        return (AudioFile, (self.path,))

    def read(self, start_s: float, end_s: float) -> np.ndarray:
        """The samples of [start_s, end_s) in recording time: fast for spans in time order (see span_reader)."""
        if self._spans is None:
            from .span_reader import ForwardSpans

            self._spans = ForwardSpans(self)
        return self._spans.read(start_s, end_s)

    def blocks(self, block_samples: int = 512 * 1875) -> Iterator[tuple[float, np.ndarray]]:
        """(start time, samples) blocks of `block_samples` (the last may be shorter), in order.

        One linear pass with constant memory. A fresh decoder is used so that
        `read` calls and this pass never disturb each other's position.
        """
        buffer = np.empty(block_samples, dtype=np.float32)
        filled, block_start, produced, nonfinite = 0, None, 0, 0
        nonfinite_spans: list[tuple[float, float]] = []
        frames = self.frames()
        for pts, frame in frames:
            if block_start is None:
                block_start = pts
            while frame.size:
                take = min(block_samples - filled, frame.size)
                buffer[filled:filled + take] = frame[:take]
                filled, frame = filled + take, frame[take:]
                if filled == block_samples:
                    block = buffer.copy()
                    nonfinite += _zero_nonfinite_noting_where(block, produced, nonfinite_spans)
                    yield block_start, block
                    produced += filled
                    block_start, filled = block_start + block_samples / SAMPLE_RATE, 0
        if filled:
            block = buffer[:filled].copy()
            nonfinite += _zero_nonfinite_noting_where(block, produced, nonfinite_spans)
            yield block_start, block
            produced += filled
        if not produced:
            raise DecodeError("no audio samples decoded (no audio stream, or zero length)")
        if nonfinite > NONFINITE_MAX_SHARE * produced:
            raise DecodeError(f"decoded audio is mostly NaN or infinite samples ({nonfinite / produced:.0%})")
        # Read only now, after a whole pass, the one thing they serve: opening a file to read spans or its
        # header needs neither. Only a length the file really declares counts (declared_length.py); Ogg
        # declares none, but marks where it ends.
        declared_s = declared_seconds(self.path, self.duration_hint_s)
        self.ends_early = _ends_early(frames.stopped_by, block_start + filled / SAMPLE_RATE, declared_s,
                                      ogg_unfinished(self.path))
        self.damaged = tuple(sorted(frames.skipped + nonfinite_spans))


# A decoded end this far before the declared one is a cut, not rounding or encoder padding (<= 0.1 s).
TRUNCATED_MIN_S = 1.0
TRUNCATED_MIN_SHARE = 0.02


def _ends_early(stopped_by: str | None, end_s: float, declared_end_s: float | None,
                unfinished: str | None = None) -> str | None:
    """Why the decoded audio, ending at `end_s`, looks cut short; None when it does not."""
    if stopped_by is not None:
        return f"decoding stopped at {end_s:.1f} s ({stopped_by}); the rest of the file is damaged or missing"
    if unfinished is not None:
        return f"the audio ends at {end_s:.1f} s and {unfinished}; the rest of the file is missing"
    if declared_end_s and declared_end_s - end_s > max(TRUNCATED_MIN_S, TRUNCATED_MIN_SHARE * declared_end_s):
        return f"the audio ends at {end_s:.1f} s but the file's header declares {declared_end_s:.1f} s"
    return None


NONFINITE_MAX_SHARE = 0.5  # more than this is a broken file, not a recording with a fault in it
NONFINITE_BURST_GAP_S = 1.0  # such samples closer than this are one burst


def zero_nonfinite(samples: np.ndarray) -> np.ndarray:
    """`samples` with each NaN or infinite sample set to 0 (in place; one check for a block that has none).

    A float WAV from a faulty effect chain holds a burst of them. The rest of the
    recording is good audio, which an error row for the whole file threw away;
    `AudioFile.blocks` still makes one where they are most of it.
    """
    if not np.isfinite(samples.sum()):  # a sum is NaN or infinite when a sample is (or it overflows)
        samples[~np.isfinite(samples)] = 0.0
    return samples


def _zero_nonfinite_noting_where(block: np.ndarray, first_sample: int, spans: list[tuple[float, float]]) -> int:
    """`zero_nonfinite` of `block` (starting at sample `first_sample`), adding where they were to `spans` as
    (start, end) seconds, a burst closer than NONFINITE_BURST_GAP_S to the last one joining it; return how
    many it held."""
    if np.isfinite(block.sum()):
        return 0
    where = np.flatnonzero(~np.isfinite(block))
    block[where] = 0.0
    runs = np.split(where, np.flatnonzero(np.diff(where) > NONFINITE_BURST_GAP_S * SAMPLE_RATE) + 1)
    for run in (run for run in runs if len(run)):  # none where the sum overflowed
        start, end = (first_sample + run[0]) / SAMPLE_RATE, (first_sample + run[-1] + 1) / SAMPLE_RATE
        if spans and start - spans[-1][1] <= NONFINITE_BURST_GAP_S:
            start = spans.pop()[0]
        spans.append((start, end))
    return len(where)
