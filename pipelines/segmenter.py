"""Per-recording preparation shared by every stage: hash, streamed decode, VAD, segments."""

from __future__ import annotations

import errno
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from omni_caption.model import AutWindows, windows_from_pauses
from omni_caption.schemas import (DAMAGED_SOURCE_FLAG, ONE_CHANNEL_SOURCE_FLAG, ONE_STREAM_SOURCE_FLAG,
                                  TRUNCATED_SOURCE_FLAG, SegmentRow,
                                  recording_id_from_sha256)
from omni_caption.schemas.source_names import stored_name

from .decode import AudioFile, DecodeError
from .discover import NOT_LOCAL, SourceFile, is_url
from .segment import Segment, SegmentationOptions, segments_for, utterance_windows
from .span_reader import DecodedAudioCache, fill_audio_cache, new_audio_cache
from .vad import FRAME_S, SileroVad, VadResult


@dataclass
class Recording:
    source: SourceFile
    sha256: str
    audio: AudioFile
    duration_s: float
    segments: list[Segment]
    ends_early: str | None = None  # why the audio looks cut short (AudioFile.ends_early); flags the last row
    damaged: tuple[tuple[float, float], ...] = ()  # damage decoding got past (AudioFile.damaged); flags those rows
    heard_channel: int | None = None  # the one channel heard where a mono mix cancels (AudioFile.heard_channel)
    other_audio_streams: int = 0  # audio streams not heard besides the default one (AudioFile.other_audio_streams)
    # The decoded samples, written during segmentation (or by one pass at the first read where no
    # segmenter of this process made them), so spans in any order cost a file read.
    cache: DecodedAudioCache | None = field(default=None, repr=False, compare=False)
    cache_on_read: bool = field(default=True, repr=False, compare=False)

    def read(self, segment: Segment):
        return self.read_span(segment.start_s, segment.end_s)

    def read_span(self, start_s: float, end_s: float):
        if self.cache is None and self.cache_on_read:
            self.cache = fill_audio_cache(self.audio)
            self.cache_on_read = self.cache is not None  # no room for it: read from the source from now on
        if self.cache is not None:
            return self.cache.read(start_s, end_s)
        return self.audio.read(start_s, end_s)

    def release_audio(self) -> None:
        """Remove the decoded-audio file once this stage's work on the recording is done."""
        if self.cache is not None:
            self.cache.close()
            self.cache = None

    def __getstate__(self):
        # The cache is a file of this process's machine: another process (a Ray actor) makes its own.
        return {**self.__dict__, "cache": None, "cache_on_read": True}

    def segment_row(self, index: int, **columns) -> SegmentRow:
        """Row `index` of this recording with its time and VAD columns; `columns` add a stage's results."""
        segment = self.segments[index]
        last = index == len(self.segments) - 1
        if self.ends_early and last:  # the segment that runs into the cut
            columns["flags"] = (*columns.get("flags", ()), TRUNCATED_SOURCE_FLAG)
        if any(_overlaps(start, end, segment.start_s, segment.end_s) or (last and start >= segment.end_s)
               for start, end in self.damaged):
            columns["flags"] = (*columns.get("flags", ()), DAMAGED_SOURCE_FLAG)
        if self.heard_channel is not None:
            columns["flags"] = (*columns.get("flags", ()), ONE_CHANNEL_SOURCE_FLAG)
        if self.other_audio_streams:
            columns["flags"] = (*columns.get("flags", ()), ONE_STREAM_SOURCE_FLAG)
        return SegmentRow(recording_id=recording_id_from_sha256(self.sha256), source_path=self.source.source_path,
                          source_sha256=self.sha256, recording_duration_s=self.duration_s, segment_index=index,
                          start_s=segment.start_s, end_s=segment.end_s, speech_ratio=segment.speech_ratio,
                          **columns)


def _overlaps(start: float, end: float, row_start: float, row_end: float) -> bool:
    """Whether damage over [start, end) lies in a row's [row_start, row_end); a point (start == end) too."""
    return start < row_end and (end > row_start or start >= row_start)


# What each finding about the recording itself says, formatted with the row it flags (its first such row).
_FINDING_LINES = {
    TRUNCATED_SOURCE_FLAG: "{row.source_path}: the audio ends at {row.end_s:.1f} s, before the file says it should "
                           "(cut short or damaged); what came before is in the output, the last row flagged {flag}",
    DAMAGED_SOURCE_FLAG: "{row.source_path}: damaged audio (skipped packets, or NaN or infinite samples) is silence "
                         "now, first in {row.start_s:.1f}-{row.end_s:.1f} s; the rest of the file was read, the rows "
                         "flagged {flag}",
    ONE_CHANNEL_SOURCE_FLAG: "{row.source_path}: its channels cancel when mixed to mono (one is the other inverted, as "
                             "from a miswired balanced input), so its loudest channel alone was heard; the rows "
                             "flagged {flag}",
    ONE_STREAM_SOURCE_FLAG: "{row.source_path}: more than one audio stream (a multi-track or dubbed recording); its "
                            "default stream alone was heard, the others were not; the rows flagged {flag}",
}


def source_findings(row: SegmentRow) -> list[tuple[str, str]]:
    """(flag, warning line) for each finding about the recording itself that `row` is flagged with."""
    return [(flag, line.format(row=row, flag=flag)) for flag, line in _FINDING_LINES.items() if flag in row.flags]


def _found_in_decoding(audio: AudioFile) -> dict:
    """What a whole pass over `audio` found about the file, as the Recording fields that carry it."""
    return {"ends_early": audio.ends_early, "damaged": audio.damaged, "heard_channel": audio.heard_channel,
            "other_audio_streams": audio.other_audio_streams}


class SegmentationStopped(Exception):
    """`Segmenter.stop` was called: the run is ending, and what was being segmented is dropped."""


class Segmenter:
    """Decode + VAD + segmentation of each recording, done once per run and reused by every stage.

    `prepare_all` works on several recordings at once, in threads: the decoder releases the GIL, and
    one core decodes Opus at only about the speed a GPU stage captions it. Each thread borrows a VAD
    model of its own, because silero keeps state between calls.
    """

    def __init__(self, options, cache_audio: bool = True, threads: int = 1):
        """`options`: the run's RunOptions (granularity, chunk limit, devices). `cache_audio`: write each
        recording's decoded samples to a temporary file (TMPDIR) in the segmentation pass, kept until
        `Recording.release_audio`; without, a recording makes its cache at its first read. `threads`:
        recordings `prepare_all` works on at once."""
        self.options = options
        self.cache_audio = cache_audio
        self.threads = max(1, threads)
        self.seg_options = SegmentationOptions(max_chunk_s=options.max_chunk_s)
        self._idle_vads: queue.SimpleQueue[SileroVad] = queue.SimpleQueue()
        self._vad_loading = threading.Lock()
        self.vads_loaded = 0
        # sha256 -> (duration, segments, what the decode found about the file: Recording's fields of that name)
        self._done: dict[str, tuple[float, list[Segment], dict]] = {}
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Make the recordings being segmented stop at their next block (SegmentationStopped): the run is
        ending, and a group of long recordings would otherwise hold it for minutes."""
        self._stopping.set()

    def resume(self) -> None:
        self._stopping.clear()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def warm_up(self) -> None:
        """Load the VAD models now (one per thread), so a benchmark or a first group times no loading."""
        with self._vad_loading:
            missing = self.threads - self.vads_loaded
        for vad in [self._new_vad() for _ in range(missing)]:
            self._idle_vads.put(vad)

    def prepare_all(self, items: Sequence[tuple[SourceFile, str | None]]) -> list[Recording | SegmentRow]:
        """`prepare(source, sha256)` of each item, up to `threads` at a time, in the items' order."""
        workers = min(self.threads, len(items))
        if workers <= 1:
            return [self.prepare(source, sha256) for source, sha256 in items]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="segment") as pool:
            return list(pool.map(lambda item: self.prepare(*item), items))

    def prepare(self, source: SourceFile, sha256: str | None = None) -> Recording | SegmentRow:
        try:
            sha256 = sha256 or source.sha256()
        except OSError as exc:
            return SegmentRow.error_row(source.source_path, unreadable_reason(source, exc))
        cache = None
        try:
            audio = AudioFile(source.path)
            if sha256 not in self._done:
                cache = new_audio_cache() if self.cache_audio else None
                blocks = self._unless_stopped(audio.blocks())
                with self._borrowed_vad() as vad:
                    analysed = vad.analyse(blocks if cache is None else cache.tee(blocks))
                self._done[sha256] = (*self.segment(analysed), _found_in_decoding(audio))
            elif self.cache_audio:  # segmented by an earlier stage: one pass only to fill the cache
                cache = fill_audio_cache(audio, self._unless_stopped(audio.blocks()))
        except (DecodeError, OSError) as exc:
            if cache is not None:
                cache.close()
            return SegmentRow.error_row(source.source_path, str(exc), sha256=sha256)
        except BaseException:
            if cache is not None:
                cache.close()
            raise
        duration, segments, found = self._done[sha256]
        # A segmenter that caches has tried here: without room for it, reads go to the source, not a second try.
        return Recording(source, sha256, audio, duration, segments, **found,
                         cache=cache.finished() if cache else None, cache_on_read=not self.cache_audio)

    def _unless_stopped(self, blocks: Iterator) -> Iterator:
        for block in blocks:
            if self._stopping.is_set():
                raise SegmentationStopped()
            yield block

    @contextmanager
    def _borrowed_vad(self) -> Iterator[SileroVad]:
        try:
            vad = self._idle_vads.get_nowait()
        except queue.Empty:
            vad = self._new_vad()
        try:
            yield vad
        finally:
            self._idle_vads.put(vad)

    def _new_vad(self) -> SileroVad:
        # One load at a time: SileroVad puts back torch's thread count, which a concurrent load would misread.
        with self._vad_loading:
            self.vads_loaded += 1
            return SileroVad(device=self.options.vad_device())

    def segment(self, vad: VadResult) -> tuple[float, list[Segment]]:
        windows = utterance_windows(vad.regions, vad.duration_s, vad.frame_energy, FRAME_S, self.seg_options)
        return vad.duration_s, segments_for(self.options.granularity, vad.regions, windows, vad.duration_s,
                                            self.seg_options,
                                            None if vad.frame_peak is None else (vad.frame_peak, FRAME_S))


def aut_windows_for(options, segments: list[Segment]) -> AutWindows | None:
    if options.aut_window is None:
        return None
    if options.aut_window != "pause":
        return AutWindows(seconds=int(options.aut_window))
    per_clip = []
    for segment in segments:
        # Cut in the middle of each pause between consecutive utterance windows.
        cuts = [(a.end_s + b.start_s) / 2 - segment.start_s for a, b in zip(segment.windows, segment.windows[1:])]
        per_clip.append(windows_from_pauses(cuts, segment.span.duration_s))
    return AutWindows(per_clip=tuple(per_clip))


def unreadable_reason(source: SourceFile, exc: OSError) -> str:
    path = source.path
    if exc.errno == errno.ENOENT and is_url(source.source_path):
        return NOT_LOCAL
    if exc.errno == errno.ENOENT and path.is_symlink():
        return f"broken symbolic link: its target {stored_name(os.readlink(path))} does not exist"
    return f"cannot read file: {exc.strerror or exc}"
