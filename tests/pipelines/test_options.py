"""RunOptions built by a program get the refusals the CLI's flags give."""

from dataclasses import replace

import pytest

from omni_caption.pipelines import RunOptions


def test_tasks_as_a_comma_string_and_language_codes_are_read_as_the_flags_read_them():
    options = RunOptions(tasks="caption, transcript", language="de")
    assert options.tasks == ("caption", "transcript") and options.language == "German"
    assert replace(options, seed=1).language == "German"  # replace() runs the checks again: they are idempotent
    assert RunOptions(tasks=["summary"], summary_from="audio").tasks == ("summary",) and RunOptions().language is None


def test_a_cache_dir_given_as_text_is_a_path_and_a_tilde_is_home(monkeypatch, tmp_path):
    """A program's `cache_dir="cache"` failed as `str / str` deep in the run, after the hashing; `"~/models"`
    built the tiny model in a folder named `~` under the working folder."""
    from pathlib import Path

    monkeypatch.setenv("HOME", str(tmp_path))
    assert RunOptions(cache_dir="cache").cache_dir == Path("cache") and RunOptions().cache_dir is None
    assert RunOptions(cache_dir="~/models").cache_dir == tmp_path / "models"


def test_tasks_are_read_once_each_in_order():
    assert RunOptions(tasks=("transcript", "caption", "transcript")).tasks == ("transcript", "caption")
    assert RunOptions(tasks=" summary ,caption,").tasks == ("summary", "caption")


def test_an_aut_window_given_as_text_is_the_same_cut_as_the_number():
    """`"8"` and `8` made two segmentation keys, so a resumed run redid every task of a finished recording."""
    assert RunOptions(aut_window="8").aut_window == 8 and RunOptions(aut_window=3).aut_window == 3
    assert RunOptions(aut_window="8").segmentation_key() == RunOptions(aut_window=8).segmentation_key()
    assert RunOptions(aut_window="pause").aut_window == "pause" and RunOptions().aut_window is None


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
    # These ran to the end and wrote nothing (no tasks), ran a typo'd task's default model, or were refused
    # only after every input was hashed and the model loaded.
    ({"tasks": ()}, "tasks (): choose from caption, transcript, reasoning, summary"),
    ({"tasks": ("captions",)}, "tasks captions: choose from caption, transcript, reasoning, summary"),
    ({"task_models": {"captions": "tiny-random"}}, "task_models captions: choose from caption, transcript"),
    ({"tasks": ("summary",)}, "a summary from text needs captions or transcripts"),
    ({"granularity": "word"}, "granularity must be one of chunk, utterance, not 'word'"),
    ({"decoder": "fast"}, "decoder must be one of auto, plain, static, refill, not 'fast'"),
    ({"engine": "spark"}, "engine must be one of local, ray, not 'spark'"),
    ({"dtype": "int8"}, "dtype must be one of auto, bfloat16, float16, float32, not 'int8'"),
    ({"device": "gpu"}, "device must be auto, cpu, cuda or cuda:N, not 'gpu'"),
    ({"aut_window": 12}, "aut_window 12: give 1..8 (seconds) or 'pause'"),
    ({"aut_window": True}, "aut_window True: give 1..8 (seconds) or 'pause'"),
    ({"loop_stop_tokens": 1}, "loop_stop_tokens must be 0 (never stop a loop) or >= 2, not 1"),
    ({"loop_stop_tokens": "3"}, "loop_stop_tokens must be 0 (never stop a loop) or >= 2, not '3'"),
])
def test_options_a_run_cannot_honour_are_refused_when_built(extra, why):
    """They ran: 100 s chunks past the Captioner's 30, a summary_from nobody reads, a language the prompt named."""
    with pytest.raises(ValueError) as refused:
        RunOptions(**extra)
    assert str(refused.value).startswith(why)
