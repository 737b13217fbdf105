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
from .segmenter import Recording

SPEAKER_TASK = "speaker"


def diarization_hash(model: str | None, options: DiarizeOptions, segmentation: str) -> str:
    payload = {"model": model or DEFAULT_PIPELINE, "options": asdict(options), "segmentation": segmentation}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def speaker_rows(diarizer: Diarizer, prepared: list[Recording | SegmentRow], config_hash: str,
                 prompt_version: str) -> list[SegmentRow]:
    """One row per segment with its speaker; recordings that cannot be diarized become error rows."""
    from dataclasses import replace

    rows = [replace(p, config_hash=config_hash) for p in prepared if isinstance(p, SegmentRow)]
    for rec in (p for p in prepared if isinstance(p, Recording)):
        try:
            turns = diarizer.diarize(rec.audio)
        except DecodeError as exc:
            rows.append(SegmentRow.error_row(rec.source.source_path, f"decoding failed mid-file: {exc}",
                                             sha256=rec.sha256, config_hash=config_hash))
            continue
        for index, speaker in enumerate(assign_speakers(rec.segments, turns)):
            rows.append(rec.segment_row(index, speaker=speaker, prompt_version=prompt_version,
                                        config_hash=config_hash))
    return rows
