"""Which rows count when stages and runs have written several versions."""

from omni_caption.schemas import (ModelIds, Scores, SegmentRow, done_tasks, format_config_hash, merge_rows,
                                  parse_config_hash)


def row(index, sha="s1", path="a.wav", hashes=None, start=None, **extra):
    start = index * 10.0 if start is None else start
    return SegmentRow(recording_id=sha, source_path=path, source_sha256=sha, recording_duration_s=20.0,
                      segment_index=index, start_s=start, end_s=start + 10.0,
                      config_hash=format_config_hash(hashes or {"caption": "c1"}), **extra)


def error(sha="s1", path="a.wav", hashes=None):
    return SegmentRow.error_row(path, "boom", sha256=sha, config_hash=format_config_hash(hashes or {"caption": "c1"}))


def test_config_hash_round_trip():
    assert parse_config_hash(format_config_hash({"transcript": "b", "caption": "a"})) == {"caption": "a", "transcript": "b"}
    assert format_config_hash({"transcript": "b", "caption": "a"}) == "caption=a,transcript=b"


def test_stages_join_into_one_row_per_segment():
    rows = [row(0, caption="c0", flags=("truncated:caption",), scores=Scores(caption_tokens=3),
                models=ModelIds(caption="cap")),
            row(1, caption="c1"),
            row(0, hashes={"transcript": "t1"}, transcript="t0", language="English",
                scores=Scores(transcript_tokens=5), models=ModelIds(transcript="ins"), flags=("empty:transcript",)),
            row(1, hashes={"transcript": "t1"}, transcript="t1")]
    merged = merge_rows(rows, {"caption": "c1", "transcript": "t1"})
    assert [(r.caption, r.transcript) for r in merged] == [("c0", "t0"), ("c1", "t1")]
    assert merged[0].flags == ("empty:transcript", "truncated:caption")
    assert merged[0].scores == Scores(caption_tokens=3, transcript_tokens=5)
    assert merged[0].models == ModelIds(caption="cap", transcript="ins")
    assert merged[0].language == "English" and merged[0].config_hash == "caption=c1,transcript=t1"


def test_outdated_config_rows_are_ignored_and_redone():
    rows = [row(0, caption="old"), row(0, hashes={"caption": "c2"}, caption="new")]
    assert [r.caption for r in merge_rows(rows, {"caption": "c2"})] == ["new"]
    assert done_tasks(rows[:1], {"caption": "c2"}) == {}


def test_a_task_not_in_this_run_is_kept_when_segments_line_up():
    rows = [row(0, caption="kept"), row(0, hashes={"transcript": "t1"}, transcript="t"),
            row(1, hashes={"transcript": "t1"}, transcript="u")]
    merged = merge_rows(rows, {"transcript": "t1"})
    assert [(r.caption, r.transcript) for r in merged] == [("kept", "t"), (None, "u")]
    shifted = [row(0, caption="other cut", start=3.0), row(0, hashes={"transcript": "t1"}, transcript="t")]
    assert merge_rows(shifted, {"transcript": "t1"})[0].caption is None


def test_latest_attempt_decides_error_or_ok():
    assert [r.status for r in merge_rows([row(0), error()], {"caption": "c1"})] == ["error"]
    assert [r.status for r in merge_rows([error(), row(0), row(1)], {"caption": "c1"})] == ["ok", "ok"]
    assert done_tasks([error()], {"caption": "c1"}) == {"s1": {"caption"}}
    assert done_tasks([error()], {"caption": "c1"}, include_errors=False) == {}


def test_a_failed_task_keeps_the_rows_of_the_others_flagged_with_why():
    wanted = {"caption": "c1", "transcript": "t1", "summary": "m1"}
    rows = [row(0, caption="c0"), row(1, caption="c1"), error(hashes={"transcript": "t1"}),
            row(0, hashes={"summary": "m1"}, summary="s"), row(1, hashes={"summary": "m1"}, summary="s")]
    merged = merge_rows(rows, wanted)
    assert [(r.status, r.caption, r.transcript, r.summary) for r in merged] == [("ok", "c0", None, "s"),
                                                                                 ("ok", "c1", None, "s")]
    assert all(r.flags == ("failed:transcript",) and r.error == "transcript failed: boom" for r in merged)
    assert merged[0].config_hash == "caption=c1,summary=m1"  # the failed task's hash is not claimed as done
    assert done_tasks(rows, wanted, include_errors=False) == {"s1": {"caption", "summary"}}


def test_a_failed_summary_leaves_the_captions_and_two_failures_both_show():
    rows = [row(0, hashes={"caption": "c1", "reasoning": "r1"}, caption="c0", reasoning="r0"),
            error(hashes={"summary": "m1"})]
    merged = merge_rows(rows, {"caption": "c1", "reasoning": "r1", "summary": "m1"})
    assert [(r.caption, r.summary, r.flags, r.error) for r in merged] == [
        ("c0", None, ("failed:summary",), "summary failed: boom")]
    two = [row(0, hashes={"speaker": "k1"}, speaker="A"), error(hashes={"caption": "c1", "transcript": "t1"}),
           SegmentRow.error_row("a.wav", "no room", sha256="s1", config_hash="summary=m1")]
    merged = merge_rows(two, {"speaker": "k1", "caption": "c1", "transcript": "t1", "summary": "m1"})
    assert merged[0].error == "caption, transcript failed: boom; summary failed: no room"
    assert merged[0].flags == ("failed:caption", "failed:summary", "failed:transcript") and merged[0].speaker == "A"


def test_a_finding_about_the_source_comes_through_once_whichever_stage_wrote_it():
    rows = [row(0, caption="a"), row(1, caption="b", flags=("truncated:source", "empty:caption")),
            row(0, hashes={"transcript": "t1"}, transcript="x"),
            row(1, hashes={"transcript": "t1"}, transcript="y", flags=("truncated:source",))]
    merged = merge_rows(rows, {"transcript": "t1", "caption": "c1"})
    assert [r.flags for r in merged] == [(), ("empty:caption", "truncated:source")]


def test_a_recording_with_only_a_derived_task_left_is_one_error_row():
    # The captions failed; a summary of nothing (or a voice of it) is no reason to keep rows.
    rows = [error(), row(0, hashes={"summary": "m1"}, flags=("empty:summary",))]
    merged = merge_rows(rows, {"caption": "c1", "summary": "m1"})
    assert [(r.status, r.error, r.segment_index) for r in merged] == [("error", "boom", None)]


def test_duplicate_parts_give_no_duplicate_rows():
    rows = [row(0, caption="x"), row(1, caption="y"), row(0, caption="x"), row(1, caption="y")]
    assert len(merge_rows(rows, {"caption": "c1"})) == 2


def test_moved_file_gets_its_new_path_and_missing_files_drop_out():
    rows = [row(0, path="old/a.wav"), row(0, sha="s2", path="gone.wav")]
    merged = merge_rows(rows, {"caption": "c1"}, current_paths={"s1": ["new/a.wav"]})
    assert [(r.source_path, r.source_sha256) for r in merged] == [("new/a.wav", "s1")]


def test_identical_files_share_one_computation_and_both_get_rows():
    merged = merge_rows([row(0, caption="x")], {"caption": "c1"}, current_paths={"s1": ["a.wav", "copy/a.wav"]})
    assert [(r.source_path, r.caption) for r in merged] == [("a.wav", "x"), ("copy/a.wav", "x")]


def test_a_kept_recording_of_an_earlier_run_is_merged_as_its_last_run_left_it():
    """A recording this run does not have keeps its latest configuration per task, not this run's."""
    rows = [row(0, sha="s2", path="b.wav", caption="old", hashes={"caption": "c0"}),
            row(0, sha="s2", path="b.wav", caption="newer", hashes={"caption": "c1-earlier"}),
            row(0, sha="s2", path="b.wav", transcript="words", hashes={"transcript": "t0"}),
            row(0, caption="current")]
    merged = merge_rows(rows, {"caption": "c1"}, current_paths={"s1": ["a.wav"], "s2": ["b.wav"]},
                        kept=frozenset({"s2"}))
    assert [(r.source_path, r.caption, r.transcript) for r in merged] == [
        ("a.wav", "current", None), ("b.wav", "newer", "words")]
    # Merged by this run's configuration instead, its caption (another hash) would be gone.
    alone = merge_rows(rows, {"caption": "c1"}, current_paths={"s2": ["b.wav"]})
    assert [(r.caption, r.transcript) for r in alone] == [(None, "words")]


def test_latest_hashes_follow_write_order():
    from omni_caption.schemas.stage_merge import latest_hashes

    rows = [row(0, hashes={"caption": "a", "transcript": "t"}), row(0, hashes={"caption": "b"})]
    assert latest_hashes(rows) == {"caption": "b", "transcript": "t"}


def test_a_voice_is_kept_while_its_text_stands_and_cleared_once_that_text_is_redone():
    """A summary redone with another model kept the WAV of the old summary on its rows, as if it voiced the new."""
    voiced = {"caption": "c1", "summary": "s1", "voice": "v1"}
    spoken = row(0, hashes=voiced, caption="c", summary="old words", summary_audio_path="/v/a.wav",
                 summary_audio_duration_s=2.0, summary_audio_source="summary", models=ModelIds(voice="talker"))
    kept = merge_rows([spoken, row(0, hashes={"caption": "c2"}, caption="new caption")], {"caption": "c2"})
    assert [(r.caption, r.summary, r.summary_audio_path, r.models.voice) for r in kept] == \
        [("new caption", "old words", "/v/a.wav", "talker")]
    assert parse_config_hash(kept[0].config_hash) == {"caption": "c2", "summary": "s1", "voice": "v1"}
    redone = merge_rows([spoken, row(0, hashes={"summary": "s2"}, summary="new words")], {"summary": "s2"})
    assert [(r.caption, r.summary, r.summary_audio_path, r.summary_audio_duration_s, r.summary_audio_source,
             r.models.voice) for r in redone] == [("c", "new words", None, None, None, None)]
    assert parse_config_hash(redone[0].config_hash) == {"caption": "c1", "summary": "s2"}
    # A caption's voice goes with the caption, whatever happens to the summary.
    caption_voice = row(0, hashes=voiced, caption="c", summary_audio_path="/v/c.wav", summary_audio_source="caption")
    merged = merge_rows([caption_voice, row(0, hashes={"summary": "s2"}, summary="new")], {"summary": "s2"})
    assert merged[0].summary_audio_path == "/v/c.wav"


def test_a_recording_every_task_failed_on_is_one_error_row_holding_every_failed_tasks_hash():
    """It held only the last's (the summary's), so the caption read as never tried, and every rerun decoded the
    unreadable file again and never came to 'nothing to do'."""
    rows = [error(hashes={"caption": "c1"}), error(hashes={"summary": "s1"})]
    (merged,) = merge_rows(rows, {"caption": "c1", "summary": "s1"})
    assert merged.status == "error" and parse_config_hash(merged.config_hash) == {"caption": "c1", "summary": "s1"}
    assert done_tasks([merged], {"caption": "c1", "summary": "s1"}) == {"s1": {"caption", "summary"}}
