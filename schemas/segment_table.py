"""Schema v3: one row per segment, recording-level columns repeated.

The Arrow schema is the contract with DuckDB, pandas and Hugging Face
`datasets`; the dataclasses are how the rest of the code builds rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import pyarrow as pa

SCHEMA_VERSION = "3"  # see migrations.py for what changed

STATUS_OK = "ok"
STATUS_ERROR = "error"
# Flags are `kind:task`; `kind:source` is a finding about the recording itself, whichever stage wrote the row.
SOURCE_FLAG_SUFFIX = ":source"
TRUNCATED_SOURCE_FLAG = "truncated" + SOURCE_FLAG_SUFFIX  # on the last row: the audio ends before the file should
DAMAGED_SOURCE_FLAG = "damaged" + SOURCE_FLAG_SUFFIX  # a row where damaged audio was skipped or NaN (silence now)
SILENT_SOURCE_FLAG = "silent" + SOURCE_FLAG_SUFFIX  # a row of digital silence: no model was asked to hear it
# Every row of a recording whose channels cancel in a mono mix (one the other inverted): one channel was heard.
ONE_CHANNEL_SOURCE_FLAG = "one_channel" + SOURCE_FLAG_SUFFIX
# Every row of a file with more than one audio stream (an OBS or camera multi-track, a film's dubs): only its
# default stream was heard.
ONE_STREAM_SOURCE_FLAG = "one_stream" + SOURCE_FLAG_SUFFIX

TASKS = ("caption", "transcript", "reasoning", "summary")


@dataclass(frozen=True)
class Scores:
    """Per-segment figures from the model and the guards; null when not measured."""

    caption_avg_logprob: float | None = None
    caption_tokens: int | None = None
    transcript_avg_logprob: float | None = None
    transcript_tokens: int | None = None
    reasoning_avg_logprob: float | None = None
    reasoning_tokens: int | None = None
    compression_ratio: float | None = None  # of the transcript (Whisper's repetition measure)
    chars_per_s: float | None = None  # of the transcript, per second of speech
    # v2: the guards' figures for the other tasks and the fallback ladder's kept temperature.
    caption_compression_ratio: float | None = None
    reasoning_compression_ratio: float | None = None
    caption_temperature: float | None = None
    transcript_temperature: float | None = None
    reasoning_temperature: float | None = None


@dataclass(frozen=True)
class ModelIds:
    """Which model (id@revision) produced each task's column."""

    caption: str | None = None
    transcript: str | None = None
    reasoning: str | None = None
    summary: str | None = None
    voice: str | None = None  # v3: the talker that voiced `summary_audio_path`


@dataclass(frozen=True)
class SegmentRow:
    recording_id: str | None
    source_path: str
    source_sha256: str | None
    recording_duration_s: float | None
    segment_index: int | None
    start_s: float | None
    end_s: float | None
    status: str = STATUS_OK
    error: str | None = None
    speaker: str | None = None
    speech_ratio: float | None = None
    caption: str | None = None
    transcript: str | None = None
    transcript_raw: str | None = None  # v2: the model's text when a guard emptied or changed `transcript`
    language: str | None = None
    reasoning: str | None = None
    answer: str | None = None
    summary: str | None = None
    summary_reasoning: str | None = None
    summary_audio_path: str | None = None  # a WAV written by `speak`
    summary_audio_duration_s: float | None = None  # v3
    summary_audio_source: str | None = None  # v3: the text column that was voiced (`summary`, `caption`, ...)
    flags: tuple[str, ...] = ()
    scores: Scores = field(default_factory=Scores)
    models: ModelIds = field(default_factory=ModelIds)
    prompt_version: str | None = None
    config_hash: str | None = None
    audio: dict | None = None  # {"bytes": FLAC bytes, "path": str} with --embed-audio

    @classmethod
    def error_row(cls, source_path: str, message: str, *, sha256: str | None = None,
                  duration_s: float | None = None, config_hash: str | None = None) -> "SegmentRow":
        return cls(
            recording_id=recording_id_from_sha256(sha256) if sha256 else None,
            source_path=source_path,
            source_sha256=sha256,
            recording_duration_s=duration_s,
            segment_index=None,
            start_s=None,
            end_s=None,
            status=STATUS_ERROR,
            error=one_line(message),
            config_hash=config_hash,
        )

    def to_dict(self) -> dict:
        # By hand, not `asdict`: that deep-copies every value and was 70% of a million-row finalize.
        row = {name: getattr(self, name) for name in ROW_FIELDS}
        row["flags"] = list(self.flags)
        row["scores"] = {name: getattr(self.scores, name) for name in _SCORE_FIELDS}
        row["models"] = {name: getattr(self.models, name) for name in _MODEL_FIELDS}
        row["audio"] = dict(self.audio) if self.audio is not None else None
        return row

    @classmethod
    def from_dict(cls, row: dict) -> "SegmentRow":
        values = {name: row[name] for name in ROW_FIELDS if name in row}
        values["flags"] = tuple(row.get("flags") or ())
        values["scores"] = Scores(**(row.get("scores") or {}))
        values["models"] = ModelIds(**(row.get("models") or {}))
        return cls(**values)


ROW_FIELDS = tuple(f.name for f in fields(SegmentRow))
_SCORE_FIELDS = tuple(f.name for f in fields(Scores))
_MODEL_FIELDS = tuple(f.name for f in fields(ModelIds))


def recording_id_from_sha256(sha256: str) -> str:
    # 16 hex digits = 64 bits: collision-free for any realistic archive, short enough to read.
    return sha256[:16]


def one_line(message: str, limit: int = 300) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


SCORES_TYPE = pa.struct([
    pa.field("caption_avg_logprob", pa.float32()),
    pa.field("caption_tokens", pa.int32()),
    pa.field("transcript_avg_logprob", pa.float32()),
    pa.field("transcript_tokens", pa.int32()),
    pa.field("reasoning_avg_logprob", pa.float32()),
    pa.field("reasoning_tokens", pa.int32()),
    pa.field("compression_ratio", pa.float32()),
    pa.field("chars_per_s", pa.float32()),
    pa.field("caption_compression_ratio", pa.float32()),
    pa.field("reasoning_compression_ratio", pa.float32()),
    pa.field("caption_temperature", pa.float32()),
    pa.field("transcript_temperature", pa.float32()),
    pa.field("reasoning_temperature", pa.float32()),
])

MODELS_TYPE = pa.struct([pa.field(f.name, pa.string()) for f in fields(ModelIds)])

# The Hugging Face `Audio` feature's storage layout.
AUDIO_TYPE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])

SEGMENT_SCHEMA = pa.schema([
    pa.field("recording_id", pa.string()),
    pa.field("source_path", pa.string(), nullable=False),
    pa.field("source_sha256", pa.string()),
    pa.field("recording_duration_s", pa.float64()),
    pa.field("segment_index", pa.int32()),
    pa.field("start_s", pa.float64()),
    pa.field("end_s", pa.float64()),
    pa.field("speaker", pa.string()),
    pa.field("speech_ratio", pa.float32()),
    pa.field("caption", pa.string()),
    pa.field("transcript", pa.string()),
    pa.field("transcript_raw", pa.string()),
    pa.field("language", pa.string()),
    pa.field("reasoning", pa.string()),
    pa.field("answer", pa.string()),
    pa.field("summary", pa.string()),
    pa.field("summary_reasoning", pa.string()),
    pa.field("summary_audio_path", pa.string()),
    pa.field("summary_audio_duration_s", pa.float64()),
    pa.field("summary_audio_source", pa.string()),
    pa.field("flags", pa.list_(pa.string())),
    pa.field("scores", SCORES_TYPE),
    pa.field("models", MODELS_TYPE),
    pa.field("prompt_version", pa.string()),
    pa.field("config_hash", pa.string()),
    pa.field("audio", AUDIO_TYPE),
    pa.field("status", pa.string(), nullable=False),
    pa.field("error", pa.string()),
])


def rows_to_table(rows: list[SegmentRow]) -> pa.Table:
    # Column by column: a million rows go through here at the end of a large run.
    columns = {name: [getattr(row, name) for row in rows] for name in SEGMENT_SCHEMA.names}
    columns["flags"] = [list(flags) for flags in columns["flags"]]
    columns["scores"] = [{name: getattr(s, name) for name in _SCORE_FIELDS} for s in columns["scores"]]
    columns["models"] = [{name: getattr(m, name) for name in _MODEL_FIELDS} for m in columns["models"]]
    return pa.Table.from_pydict(columns, schema=SEGMENT_SCHEMA)


def table_to_rows(table: pa.Table) -> list[SegmentRow]:
    return [SegmentRow.from_dict(row) for row in table.to_pylist()]

