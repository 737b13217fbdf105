"""Per-recording preparation shared by every stage: hash, streamed decode, VAD, segments."""

from __future__ import annotations

from dataclasses import dataclass

from omni_caption.model import AutWindows, windows_from_pauses
from omni_caption.schemas import SegmentRow, recording_id_from_sha256

from .decode import AudioFile, DecodeError
from .discover import SourceFile
from .segment import Segment, SegmentationOptions, segments_for, utterance_windows
from .vad import FRAME_S, SileroVad, VadResult


@dataclass
class Recording:
    source: SourceFile
    sha256: str
    audio: AudioFile
    duration_s: float
    segments: list[Segment]

    def read(self, segment: Segment):
        return self.audio.read(segment.start_s, segment.end_s)

    def segment_row(self, index: int, **columns) -> SegmentRow:
        """Row `index` of this recording with its time and VAD columns; `columns` add a stage's results."""
        segment = self.segments[index]
        return SegmentRow(recording_id=recording_id_from_sha256(self.sha256), source_path=self.source.source_path,
                          source_sha256=self.sha256, recording_duration_s=self.duration_s, segment_index=index,
                          start_s=segment.start_s, end_s=segment.end_s, speech_ratio=segment.speech_ratio,
                          **columns)


class Segmenter:
    """Decode + VAD + segmentation of each recording, done once per run and reused by every stage."""

    def __init__(self, options):
        """`options`: the run's RunOptions (granularity, chunk limit, devices)."""
        self.options = options
        self.seg_options = SegmentationOptions(max_chunk_s=options.max_chunk_s)
        self._vad: SileroVad | None = None
        self._done: dict[str, tuple[float, list[Segment]]] = {}

    def vad(self) -> SileroVad:
        if self._vad is None:
            self._vad = SileroVad(device=self.options.vad_device())
        return self._vad

    def prepare(self, source: SourceFile, sha256: str | None = None) -> Recording | SegmentRow:
        try:
            sha256 = sha256 or source.sha256()
        except OSError as exc:
            return SegmentRow.error_row(source.source_path, f"cannot read file: {exc.strerror or exc}")
        try:
            audio = AudioFile(source.path)
            if sha256 not in self._done:
                self._done[sha256] = self.segment(self.vad().analyse(audio.blocks()))
        except (DecodeError, OSError) as exc:
            return SegmentRow.error_row(source.source_path, str(exc), sha256=sha256)
        duration, segments = self._done[sha256]
        return Recording(source, sha256, audio, duration, segments)

    def segment(self, vad: VadResult) -> tuple[float, list[Segment]]:
        # Segmentation works from 0; the stream offset (e.g. mp3 priming) is added back for file time.
        regions = [r.shifted(-vad.offset_s) for r in vad.regions]
        windows = utterance_windows(regions, vad.duration_s, vad.frame_energy, FRAME_S, self.seg_options)
        segments = segments_for(self.options.granularity, regions, windows, vad.duration_s, self.seg_options)
        shifted = [Segment(s.span.shifted(vad.offset_s), s.speech_ratio,
                           tuple(w.shifted(vad.offset_s) for w in s.windows)) for s in segments]
        return vad.duration_s, shifted


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
