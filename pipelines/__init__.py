"""decode -> segment -> batch -> write."""

from omni_caption.file_kinds import AUDIO_EXTENSIONS, MEDIA_EXTENSIONS, VIDEO_EXTENSIONS

from .cuts import CutChanged
from .decode import SAMPLE_RATE, AudioFile, DecodedAudio, DecodeError, DecodingUnavailable, decode_audio
from .discover import InputPathError, SourceFile, discover
from .output_checks import OutputPathError
from .run import RayOptions, RunOptions, RunSummary, run_corpus
from .run_preview import RunPreview, preview_run
from .segment import Segment, SegmentationOptions, TimeSpan, caption_chunks, segments_for, utterance_windows
from .vad import SileroVad, VadOptions, VadResult

__all__ = [
    "AUDIO_EXTENSIONS", "MEDIA_EXTENSIONS", "SAMPLE_RATE", "VIDEO_EXTENSIONS", "AudioFile", "CutChanged", "DecodeError",
    "DecodedAudio", "DecodingUnavailable", "InputPathError", "OutputPathError", "RayOptions", "RunOptions", "RunPreview", "RunSummary",
    "Segment",
    "SegmentationOptions", "SileroVad", "SourceFile", "TimeSpan", "VadOptions", "VadResult", "caption_chunks",
    "decode_audio", "discover", "preview_run", "run_corpus", "segments_for", "utterance_windows",
]
