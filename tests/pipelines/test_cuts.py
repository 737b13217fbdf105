"""A run that cuts recordings otherwise refuses to drop the stored tasks it does not redo."""

from __future__ import annotations

import json
import shutil

import duckdb
import pyarrow.parquet as pq
import pytest

from omni_caption.pipelines import RunOptions, run_corpus
from omni_caption.pipelines.cuts import CutChanged, check_cut, cut_of, cuts_in
from omni_caption.pipelines.run_preview import preview_run
from omni_caption.schemas import RowState
from tests.conftest import EXAMPLES
from tests.pipelines.run_helpers import tiny_run_options

CHUNK_30 = "--granularity chunk --max-chunk-s 30"
UTTERANCE_30 = "--granularity utterance --max-chunk-s 30"


def options(cache_dir, **extra) -> RunOptions:
    return tiny_run_options(cache_dir, **{"max_new_tokens": 3, **extra})


def test_cut_names_the_options_that_move_segment_boundaries():
    assert cut_of(RunOptions()) == CHUNK_30
    assert cut_of(RunOptions(granularity="utterance", max_chunk_s=12.5, aut_window="pause")) == \
        "--granularity utterance --max-chunk-s 12.5"


def test_cuts_are_read_from_final_files_parts_and_files_from_before_cuts_were_kept():
    assert cuts_in({"cuts": {"aa": CHUNK_30}, "options": {"granularity": "utterance", "max_chunk_s": 30}}) == \
        {"aa": CHUNK_30}
    assert cuts_in({"cut": UTTERANCE_30, "tasks": {"caption": "bb", "transcript": "cc"}}) == \
        {"bb": UTTERANCE_30, "cc": UTTERANCE_30}
    before = {"options": {"granularity": "chunk", "max_chunk_s": 30.0},
              "tasks": {"caption": {"model": "captioner", "config_hash": "dd"}}}
    assert cuts_in(before) == {"dd": CHUNK_30}
    assert cuts_in({}) == {} and cuts_in({"tool_version": "0.1.0", "tasks": {"caption": "ee"}}) == {}


def state(key, hashes, status="ok"):
    return RowState(key, f"{key}.wav", hashes, status)


def test_only_stored_tasks_this_run_does_not_redo_of_its_inputs_count():
    known = {"c1": CHUNK_30, "t1": CHUNK_30, "s1": CHUNK_30, "x1": CHUNK_30}
    states = [state("r1", "caption=c1,transcript=t1"), state("r1", "speaker=s1"),
              state("r2", "caption=x1", status="error"),  # a failed task holds nothing to lose
              state("r3", "caption=c1"), state("r4", "caption=unknown")]
    wanted = {"transcript": "t2"}  # redone: nothing of it is lost
    with pytest.raises(CutChanged) as refused:
        check_cut(states, {"r1", "r2", "r4"}, wanted, UTTERANCE_30, known, "o.parquet")
    assert str(refused.value) == (
        f"--out o.parquet holds caption for 1 of these recordings cut with {CHUNK_30}; speaker for 1 of these "
        f"recordings cut with {CHUNK_30}, and this run cuts with {UTTERANCE_30}: a row is one segment of every "
        f"task, so those would be dropped. Add caption to --tasks and add --diarize to redo them at the new cut, "
        f"run with {CHUNK_30} to keep them, or give another --out")
    check_cut(states, {"r1"}, {"caption": "c2", "transcript": "t2", "speaker": "s2"}, UTTERANCE_30, known, "o")
    check_cut(states, {"r1"}, wanted, CHUNK_30, known, "o")  # the same cut: every row lines up
    check_cut(states, {"r3", "r4"}, {}, CHUNK_30, known, "o")
    # The latest state of a task wins: a caption redone at the new cut is not a caption at the old one.
    check_cut(states + [state("r3", "caption=c9")], {"r3"}, {}, UTTERANCE_30, {**known, "c9": UTTERANCE_30}, "o")


@pytest.fixture
def meeting(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(EXAMPLES / "meetings" / "weekly_planning.opus", folder)
    return folder


def test_a_new_cut_for_one_task_keeps_the_others_or_refuses_before_any_work(meeting, tmp_path, cache_dir,
                                                                             tiny_dir):
    """Captions at chunks, then transcripts at utterances, dropped the captions without a word."""
    out = tmp_path / "o.parquet"
    run_corpus([meeting], out, options(cache_dir), show_progress=False)
    before = out.read_bytes()
    recut = options(cache_dir, tasks=("transcript",), granularity="utterance")
    for plan in (preview_run, run_corpus):
        with pytest.raises(CutChanged, match=f"holds caption for 1 of these recordings cut with {CHUNK_30}, and "
                                             f"this run cuts with {UTTERANCE_30}"):
            plan([meeting], out, recut)
    assert out.read_bytes() == before and not (tmp_path / "o.parquet.parts").exists()
    # Another AuT window keeps the segments: no refusal, and the captions stay.
    run_corpus([meeting], out, options(cache_dir, tasks=("transcript",), aut_window="4"), show_progress=False)
    assert duckdb.sql(f"SELECT count(caption), count(transcript) FROM '{out}'").fetchone() == (2, 2)
    # With the caption redone at the new cut, both sit on the utterance rows.
    run_corpus([meeting], out, options(cache_dir, tasks=("caption", "transcript"), granularity="utterance"),
               show_progress=False)
    rows, captions, transcripts = duckdb.sql(f"SELECT count(*), count(caption), count(transcript) FROM '{out}'").fetchone()
    assert rows > 2 and captions == transcripts == rows


def test_a_dataset_written_before_cuts_were_kept_is_judged_by_its_last_runs_options(meeting, tmp_path, cache_dir,
                                                                                    tiny_dir):
    out = tmp_path / "o.parquet"
    run_corpus([meeting], out, options(cache_dir), show_progress=False)
    table = pq.read_table(out)
    metadata = dict(table.schema.metadata)
    run_config = json.loads(metadata[b"omni_caption.run_config"])
    assert run_config["cuts"] == {run_config["tasks"]["caption"]["config_hash"]: CHUNK_30}
    del run_config["cuts"]
    metadata[b"omni_caption.run_config"] = json.dumps(run_config).encode()
    pq.write_table(table.replace_schema_metadata(metadata), out)
    with pytest.raises(CutChanged, match=f"cut with {CHUNK_30}"):
        run_corpus([meeting], out, options(cache_dir, tasks=("transcript",), max_chunk_s=20.0), show_progress=False)
