"""decode -> segment -> batch -> write."""

from .chunking import TimeSpan, even_chunks
from .decode import SAMPLE_RATE, DecodedAudio, DecodeError, decode_audio
from .discover import AUDIO_EXTENSIONS, MEDIA_EXTENSIONS, VIDEO_EXTENSIONS, InputPathError, SourceFile, discover
from .run import OutputPathError, RunOptions, RunSummary, run_corpus

__all__ = [
    "AUDIO_EXTENSIONS", "MEDIA_EXTENSIONS", "SAMPLE_RATE", "VIDEO_EXTENSIONS", "DecodeError", "DecodedAudio",
    "InputPathError", "OutputPathError", "RunOptions", "RunSummary", "SourceFile", "TimeSpan", "decode_audio",
    "discover", "even_chunks", "run_corpus",
]
