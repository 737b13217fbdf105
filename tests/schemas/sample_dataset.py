"""A small real dataset for the read-side tests: two recordings, one error, flags, two models."""

from __future__ import annotations

from pathlib import Path

from omni_caption.schemas import DatasetInfo, ModelIds, SegmentRow, rows_to_table, write_table_atomic

CAPTIONER = "Qwen/Qwen3-Omni-30B-A3B-Captioner@abc"
INSTRUCT = "Qwen/Qwen3-Omni-30B-A3B-Instruct@def"


def sample_rows() -> list[SegmentRow]:
    models = ModelIds(caption=CAPTIONER, transcript=INSTRUCT)
    a = dict(recording_id="aa" * 8, source_path="a.wav", source_sha256="aa" * 32, recording_duration_s=45.0,
             models=models, prompt_version="p1", config_hash="caption=1,transcript=2")
    b = dict(recording_id="bb" * 8, source_path="talks/b.mp3", source_sha256="bb" * 32, recording_duration_s=10.0,
             models=models, prompt_version="p1", config_hash="caption=1,transcript=2",
             summary="A short planning meeting about the budget.")
    return [
        SegmentRow(**a, segment_index=0, start_s=0.0, end_s=15.0, caption="A dog barks loudly near the river.",
                   transcript="Hey, stop barking!", language="English", flags=("truncated:caption",)),
        SegmentRow(**a, segment_index=1, start_s=15.0, end_s=30.0, caption="Birds sing in the morning."),
        SegmentRow(**a, segment_index=2, start_s=30.0, end_s=45.0, caption="Rain falls on a tin roof.",
                   transcript="It is raining again.\n\nReally.", language="English",
                   flags=("repetition:transcript", "truncated:caption")),
        SegmentRow(**b, segment_index=0, start_s=0.0, end_s=9.5, caption="A man speaks in a meeting room.",
                   transcript="Welcome to the weekly planning meeting.", language="English", speaker="SPEAKER_00"),
        SegmentRow.error_row("bad.mp3", "FFmpeg cannot read it as audio or video", config_hash="caption=1"),
    ]


def write_sample(path: Path, rows: list[SegmentRow] | None = None, run_config: dict | None = None) -> Path:
    info = DatasetInfo(tool_version="0.1.0", run_config=run_config or {"inputs": []})
    return write_table_atomic(rows_to_table(rows if rows is not None else sample_rows()), path, info)
