"""RunOptions built by a program get the refusals the CLI's flags give."""

from dataclasses import replace

import pytest

from omni_caption.pipelines import RunOptions


def test_tasks_as_a_comma_string_and_language_codes_are_read_as_the_flags_read_them():
    options = RunOptions(tasks="caption, transcript", language="de")
    assert options.tasks == ("caption", "transcript") and options.language == "German"
    assert replace(options, seed=1).language == "German"  # replace() runs the checks again: they are idempotent
    assert RunOptions(tasks=["summary"]).tasks == ("summary",) and RunOptions().language is None


def test_a_cache_dir_given_as_text_is_a_path():
    """A program's `cache_dir="cache"` failed as `str / str` deep in the run, after the hashing."""
    from pathlib import Path

    assert RunOptions(cache_dir="cache").cache_dir == Path("cache") and RunOptions().cache_dir is None


@pytest.mark.parametrize("extra,why", [
    ({"language": "Klingon"}, "--language 'Klingon': Qwen3-Omni hears English, Chinese"),
    ({"max_chunk_s": 100.0}, "max_chunk_s must be 10 to 30 s, not 100.0"),
    ({"max_chunk_s": 5}, "max_chunk_s must be 10 to 30 s, not 5"),
    ({"summary_from": "video"}, "summary_from must be one of text, audio, not 'video'"),
    ({"batch_size": "big"}, "batch_size must be 'auto' or a whole number from 1, not 'big'"),
    ({"batch_size": 0}, "batch_size must be 'auto' or a whole number from 1, not 0"),
    ({"batch_size": True}, "batch_size must be 'auto' or a whole number from 1, not True"),
    # These failed deep in a run (a TypeError after the model loaded; `range() arg 3 must not be zero`), or
    # ran: no token for a caption.
    ({"max_new_tokens": "8"}, "max_new_tokens must be None or a whole number from 1, not '8'"),
    ({"max_new_tokens": 0}, "max_new_tokens must be None or a whole number from 1, not 0"),
    ({"group_recordings": 0}, "group_recordings must be None or a whole number from 1, not 0"),
    ({"segment_threads": 2.5}, "segment_threads must be None or a whole number from 1, not 2.5"),
    ({"rows_per_shard": None}, "rows_per_shard must be a whole number from 1, not None"),
])
def test_options_a_run_cannot_honour_are_refused_when_built(extra, why):
    """They ran: 100 s chunks past the Captioner's 30, a summary_from nobody reads, a language the prompt named."""
    with pytest.raises(ValueError) as refused:
        RunOptions(**extra)
    assert str(refused.value).startswith(why)
