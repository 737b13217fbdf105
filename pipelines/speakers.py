"""The diarization stage: who speaks in each segment, as a resumable stage of its own.

Speakers are written as rows keyed `speaker=<hash>` like any task, so turning
`--diarize` on for an existing dataset diarizes without redoing the model
tasks, and a crash mid-way loses at most one group.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from omni_caption.schemas import SegmentRow

from .decode import DecodeError
from .diarize import DEFAULT_PIPELINE, DiarizeOptions, Diarizer, assign_speakers
from .progress import PartialProgress
from .segmenter import Recording

SPEAKER_TASK = "speaker"


def diarization_hash(model: str | None, options: DiarizeOptions, segmentation: str) -> str:
    payload = {"model": model or DEFAULT_PIPELINE, "options": asdict(options), "segmentation": segmentation}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def speaker_rows(diarizer: Diarizer, prepared: list[Recording | SegmentRow], config_hash: str,
                 prompt_version: str, on_progress: PartialProgress | None = None) -> list[SegmentRow]:
    """One row per segment with its speaker; recordings that cannot be diarized become error rows.
    `on_progress` hears after each recording (diarizing one of hours takes minutes on a CPU)."""
    from dataclasses import replace

    rows = [replace(p, config_hash=config_hash) for p in prepared if isinstance(p, SegmentRow)]
    unreadable, audio_done_s = len(rows), 0.0
    for done, rec in enumerate((p for p in prepared if isinstance(p, Recording)), start=1):
        try:
            turns = diarizer.diarize(rec.audio)
        except DecodeError as exc:
            rows.append(SegmentRow.error_row(rec.source.source_path, f"decoding failed mid-file: {exc}",
                                             sha256=rec.sha256, config_hash=config_hash))
        else:
            rows += [rec.segment_row(index, speaker=speaker, prompt_version=prompt_version, config_hash=config_hash)
                     for index, speaker in enumerate(assign_speakers(rec.segments, turns))]
        audio_done_s += rec.duration_s
        if on_progress is not None:
            on_progress(unreadable + done, audio_done_s)
    return rows
