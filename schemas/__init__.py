"""The Arrow/Parquet contract (schema v3 and its migrations), atomic writing, merging, DuckDB views."""

from .duckdb_views import NotADataset, QueryRefused, connect_readonly, run_query
from .parquet_store import DatasetInfo, read_dataset, schema_version_of, write_table_atomic
from .part_store import PartStore
from .stored_rows import RowState, StoredRows
from .stage_merge import done_tasks, format_config_hash, merge_in_chunks, merge_rows, parse_config_hash, recording_key
from .segment_table import (
    SCHEMA_VERSION,
    SEGMENT_SCHEMA,
    STATUS_ERROR,
    STATUS_OK,
    TRUNCATED_SOURCE_FLAG,
    DAMAGED_SOURCE_FLAG,
    SILENT_SOURCE_FLAG,
    ONE_CHANNEL_SOURCE_FLAG,
    ONE_STREAM_SOURCE_FLAG,
    ModelIds,
    Scores,
    SegmentRow,
    one_line,
    recording_id_from_sha256,
    rows_to_table,
    table_to_rows,
)

__all__ = [
    "SCHEMA_VERSION", "SEGMENT_SCHEMA", "STATUS_ERROR", "STATUS_OK", "TRUNCATED_SOURCE_FLAG", "DAMAGED_SOURCE_FLAG",
    "SILENT_SOURCE_FLAG", "ONE_CHANNEL_SOURCE_FLAG", "ONE_STREAM_SOURCE_FLAG",
    "DatasetInfo", "ModelIds",
    "NotADataset", "PartStore", "QueryRefused", "RowState", "StoredRows", "Scores", "SegmentRow", "connect_readonly", "done_tasks", "format_config_hash", "merge_in_chunks", "merge_rows", "one_line",
    "parse_config_hash", "recording_key",
    "read_dataset", "recording_id_from_sha256", "rows_to_table", "run_query", "schema_version_of",
    "table_to_rows", "write_table_atomic",
]
