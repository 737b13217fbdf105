"""Audio headers without decoding: sampling rate, length and channels, for manifests that point at files."""

from __future__ import annotations

from pathlib import Path

from omni_caption.schemas.export_lhotse import AudioInfo


def probe_audio(path: str | Path) -> AudioInfo:
    """libsndfile first (what lhotse itself reads wav/flac/mp3/ogg with, so the figures agree),
    then FFmpeg through torchcodec for the containers libsndfile cannot open (m4a, mp4, ...)."""
    import soundfile

    try:
        info = soundfile.info(str(path))
        if info.frames > 0:
            return AudioInfo(sampling_rate=info.samplerate, num_samples=info.frames, num_channels=info.channels)
    except (RuntimeError, soundfile.LibsndfileError, UnicodeEncodeError):  # the last: a name that is not UTF-8
        pass
    from .decode import audio_decoder

    metadata = audio_decoder(path).metadata
    duration = metadata.duration_seconds_from_header or metadata.duration_seconds
    if not metadata.sample_rate or not duration:
        raise ValueError(f"cannot tell the length of {path}")
    return AudioInfo(sampling_rate=metadata.sample_rate, num_samples=round(duration * metadata.sample_rate),
                     num_channels=metadata.num_channels or 1)


def heard_channel(path: str | Path) -> int | None:
    """The one channel a run hears `path` through where its channels cancel in a mono mix (decode.AudioFile's
    rule, so a manifest names the channel the captions came from), else None."""
    from .decode import AudioFile, DecodeError

    try:
        return AudioFile(path).heard_channel
    except (DecodeError, OSError):
        return None
