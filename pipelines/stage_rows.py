"""The rows a model stage writes for a group's segments: the model's outputs, a failed recording's error row,
or a row of digital silence that no model was asked to hear."""

from __future__ import annotations

from omni_caption.captioner import PROMPT_VERSION, TaskConfig
from omni_caption.model import OmniModel
from omni_caption.schemas import SILENT_SOURCE_FLAG, ModelIds, Scores, SegmentRow, format_config_hash

from .segment import Segment
from .segmenter import Recording

# -80 dBFS: at 16 bits, 3 steps of the quantiser. Below it a segment holds digital silence or dither (a muted
# microphone, a recorder's pre-roll, a gap filled in for damaged packets): there is nothing to hear, so a model
# asked to caption it can only make something up, and its time on the GPU is wasted.
SILENT_PEAK = 1e-4


def is_digital_silence(segment: Segment) -> bool:
    """Measured at segmentation (its peak), so a batch is filled with segments a model will hear."""
    return segment.peak is not None and segment.peak < SILENT_PEAK


def fail_recordings(recordings, why: str, stage_hash: str) -> list[SegmentRow]:
    # Error rows carry the stage's hashes: the failure is this stage's result for that recording.
    return [SegmentRow.error_row(r.source.source_path, why, sha256=r.sha256, config_hash=stage_hash)
            for r in recordings]


def silent_row(rec: Recording, index: int, configs: list[TaskConfig], tasks: frozenset[str]) -> SegmentRow:
    """The segment's row with no text, flagged silent:source, its tasks done (their hashes) without a model."""
    done = [c for c in configs if c.name in tasks]
    return rec.segment_row(index, flags=(SILENT_SOURCE_FLAG,),
                           prompt_version=done[0].prompt_version if done else PROMPT_VERSION,
                           config_hash=format_config_hash({c.name: c.config_hash() for c in done}))


def segment_row(omni: OmniModel, rec: Recording, index: int, results: list) -> SegmentRow:
    """The segment's row from each task's (config, guarded output)."""
    columns: dict = {}
    scores: dict = {}
    flags: list[str] = []
    models: dict = {}
    hashes: dict[str, str] = {}
    prompt_version = PROMPT_VERSION
    for config, output in results:
        prompt_version = config.prompt_version  # one stage, one model: every config shares its family
        columns.update(output.columns)
        if "transcript" in output.raw:
            columns["transcript_raw"] = output.raw["transcript"]
        scores.update({k: v for k, v in output.scores.items() if k in Scores.__dataclass_fields__})
        flags.extend(output.flags)
        models[config.name] = omni.model_label
        hashes[config.name] = config.config_hash()
    return rec.segment_row(
        index,
        flags=tuple(sorted(set(flags))),
        scores=Scores(**scores),
        models=ModelIds(**models),
        prompt_version=prompt_version,
        config_hash=format_config_hash(hashes),
        **columns,
    )
