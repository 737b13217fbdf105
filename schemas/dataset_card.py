"""The README.md of an `export --format hf` folder: the dataset card the Hugging Face Hub shows and reads.

Uploaded without one, a dataset's page said only that it has no card: nothing
told a reader which models wrote the text, with which prompts, from how many
hours, which rows are flagged, or that a tiny-random demo's text is noise.
Its YAML header names the data files, so the Hub's viewer and
`load_dataset(folder)` find the split.
"""

from __future__ import annotations

from pathlib import Path

from .dataset_info import DatasetSummary

# The Hub's size classes, by rows: the first whose bound is above the count.
_SIZE_CATEGORIES = ((10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
                    (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"), (10**10, "1B<n<10B"),
                    (10**11, "10B<n<100B"), (10**12, "100B<n<1T"))
_TASK_TEXTS = {"caption": "captions", "transcript": "transcripts", "reasoning": "reasoning traces",
               "summary": "summaries"}
# What each task's text is, for the card's tags.
_TASK_TAGS = {"caption": "audio-captioning", "transcript": "transcription", "reasoning": "reasoning",
              "summary": "summarization"}
TINY_RANDOM_MARK = "tiny-random"  # in the model ids of omni-caption's random-weight test models
# The card's first line after its header: a README.md without it is the user's own, never written over.
OWN_CARD_MARK = "<!-- written by omni-caption export --format hf; replace this line to keep your edits -->"


def is_own_card(path: Path) -> bool:
    """Whether `path` may be written: there is no card yet, or omni-caption wrote the one there."""
    try:
        return OWN_CARD_MARK in path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return True


def size_category(rows: int) -> str:
    return next((name for bound, name in _SIZE_CATEGORIES if rows < bound), "n>1T")


def dataset_card(summary: DatasetSummary, rows: int, data_files: str, has_audio: bool) -> str:
    """The card for `rows` rows in `data_files` (a glob under the folder) of the dataset `summary` describes."""
    tags = ["omni-caption", "audio", *(_TASK_TAGS[task] for task in summary.models if task in _TASK_TAGS)]
    header = ["---", "configs:", "- config_name: default", "  data_files:", "  - split: train",
              f"    path: {data_files}", "tags:", *(f"- {tag}" for tag in tags), "size_categories:",
              f"- {size_category(rows)}", "---", OWN_CARD_MARK, ""]
    texts = [_TASK_TEXTS[task] for task in summary.models if task in _TASK_TEXTS] or ["segments"]
    what = " and ".join([", ".join(texts[:-1]), texts[-1]] if len(texts) > 1 else texts)
    body = [f"# {what.capitalize()} of {summary.recordings} recording{'s' * (summary.recordings != 1)} "
            f"({summary.audio_hours:.2f} h of audio)", ""]
    if any(TINY_RANDOM_MARK in model for models in summary.models.values() for model in models):
        body += ["> **Nonsense:** written by a tiny random-weight model (omni-caption's `tiny-random`, for tests and "
                 "its offline demo). The text in this dataset is noise: do not train on it.", ""]
    errors = f"; {summary.recordings_error} could not be read (`status = 'error'`, the reason in `error`)" \
        if summary.recordings_error else ""
    if summary.copies:
        errors += (f"; {summary.copies} recording{'s are' if summary.copies != 1 else ' is'} a byte-identical copy "
                   f"of another, with the same `recording_id` and text: keep one row of each per `recording_id` "
                   f"and `segment_index` to train on each once")
    body += [f"Made with omni-caption {', '.join(summary.tool_versions)} (schema "
             f"{', '.join(summary.schema_versions)}, prompt version {', '.join(summary.prompt_versions) or '-'}): "
             f"{rows} rows, one per segment of a recording, {summary.segments} of them with results"
             f"{errors}. A row's `flags` name what the hallucination guards found in it (`kind:task`), and "
             f"`kind:source` what was found in the recording itself.", ""]
    body += _table(["task", "model"], [(task, model) for task, models in summary.models.items() for model in models])
    body += _table(["flag", "segments"], list(summary.flag_counts.items()))
    body += _table(["language", "segments"], list(summary.languages.items()))
    if has_audio:
        body += ["`audio` holds each segment's clip, 16 kHz mono FLAC (a `datasets` `Audio` feature).", ""]
    body += ["```python", "from datasets import load_dataset", "",
             'rows = load_dataset("path/to/this/folder", split="train")  # or its Hub id', "```", ""]
    return "\n".join(header + body)


def _table(columns: list[str], rows: list[tuple]) -> list[str]:
    if not rows:
        return []
    cells = [" | ".join(str(cell).replace("|", "\\|") for cell in row) for row in rows]
    return [f"| {' | '.join(columns)} |", f"|{'---|' * len(columns)}", *(f"| {row} |" for row in cells), ""]
