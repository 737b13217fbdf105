"""Every task end to end on each family's tiny random model over a multi-recording folder."""

import re
import shutil

import duckdb
import pytest

from omni_caption.pipelines import RunOptions, run_corpus
from tests.conftest import EXAMPLES


# Each family runs every task it has a model for (Qwen2.5-Omni has no Thinking variant: no reasoning).
FAMILY_TASKS = {"tiny-random": ("caption", "transcript", "reasoning", "summary"),
                "tiny-random-2.5": ("caption", "transcript", "summary")}


@pytest.fixture(scope="module")
def all_tasks(tmp_path_factory, cache_dir, family_preset):
    folder = tmp_path_factory.mktemp("in")
    shutil.copytree(EXAMPLES, folder, dirs_exist_ok=True)
    out = folder.parent / "all.parquet"
    tasks = FAMILY_TASKS[family_preset]
    summary = run_corpus([folder], out, RunOptions(tasks=tasks, model=family_preset, greedy=True, max_new_tokens=8,
                                                   cache_dir=cache_dir, device="cpu"), show_progress=False)
    return out, summary, tasks


def test_every_ok_row_has_every_task(all_tasks):
    out, summary, tasks = all_tasks
    assert summary.ok == 4 and summary.errors == 1
    rows = duckdb.sql(f"SELECT * FROM '{out}' WHERE status = 'ok'").df()
    assert len(rows) == summary.segments
    for task in tasks:
        assert rows["models"].map(lambda m: m[task]).notna().all(), task
        assert rows["config_hash"].str.contains(f"{task}=").all(), task
    assert rows["caption"].notna().all() and rows["transcript"].notna().all()
    if "reasoning" in tasks:
        assert (rows["reasoning"].notna() | rows["answer"].notna()).all()
    assert rows["prompt_version"].notna().all()
    assert rows["speech_ratio"].between(0, 1).all()


def test_models_column_names_the_family_and_size(all_tasks):
    out, _, tasks = all_tasks
    family = "qwen2.5-omni" if "reasoning" not in tasks else "qwen3-omni"
    labels = {m[t] for (m,) in duckdb.sql(f"SELECT models FROM '{out}' WHERE status = 'ok'").fetchall() for t in tasks}
    assert len(labels) == 1
    assert re.search(rf"\({re.escape(family)}, \d+\.\dM params\)", labels.pop())


def test_reasoning_with_a_family_that_has_no_thinking_model_is_refused(tmp_path, cache_dir, tiny25_dir):
    from omni_caption.model.families import UnsupportedFeatureError

    out = tmp_path / "r.parquet"
    with pytest.raises(UnsupportedFeatureError, match="use --reasoning-model thinking") as info:
        run_corpus([EXAMPLES / "field"], out, RunOptions(tasks=("caption", "reasoning"), model="tiny-random-2.5",
                                                         cache_dir=cache_dir, device="cpu"), show_progress=False)
    assert "\n" not in str(info.value) and not out.exists()


def test_summary_is_the_same_on_every_row_of_a_recording(all_tasks):
    out, _, _ = all_tasks
    per_recording = duckdb.sql(f"""SELECT source_path, count(DISTINCT coalesce(summary, '<null>')) AS n,
                                          count(*) AS segments, bool_or(list_contains(flags, 'empty:summary')) AS empty
                                   FROM '{out}' WHERE status = 'ok' GROUP BY source_path""").fetchall()
    assert per_recording and all(n == 1 for _, n, _, _ in per_recording)


def test_columns_of_tasks_not_asked_stay_null(tmp_path, cache_dir, tiny_dir):
    out = tmp_path / "c.parquet"
    run_corpus([EXAMPLES / "field"], out, RunOptions(tasks=("transcript",), model="tiny-random", greedy=True,
                                                     max_new_tokens=4, cache_dir=cache_dir, device="cpu"),
               show_progress=False)
    row = duckdb.sql(f"SELECT caption, reasoning, answer, summary, models.caption, transcript FROM '{out}'").fetchone()
    assert row[:5] == (None, None, None, None, None) and row[5] is not None


def test_summary_from_audio(tmp_path, cache_dir, tiny_dir):
    out = tmp_path / "s.parquet"
    run_corpus([EXAMPLES / "meetings"], out, RunOptions(tasks=("summary",), summary_from="audio",
                                                        model="tiny-random", greedy=True, max_new_tokens=6,
                                                        cache_dir=cache_dir, device="cpu"), show_progress=False)
    rows = duckdb.sql(f"SELECT summary, flags, caption FROM '{out}'").fetchall()
    assert len(rows) == 2 and len({r[0] for r in rows}) == 1 and rows[0][2] is None


def audio_summaries(tmp_path, cache_dir, monkeypatch, longest_that_fits_s: float):
    """An audio summary of the 32 s meeting on a GPU where a call hearing more than the given seconds
    runs out of memory; returns (run summary, rows, seconds each call heard)."""
    import torch

    from omni_caption.pipelines import summarise

    heard = []
    real = summarise.generate_batch

    def tight_memory(omni, audios, *args, **kwargs):
        heard.append(round(len(audios[0]) / 16000, 1))
        if heard[-1] > longest_that_fits_s:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(omni, audios, *args, **kwargs)

    monkeypatch.setattr(summarise, "generate_batch", tight_memory)
    out = tmp_path / "s.parquet"
    summary = run_corpus([EXAMPLES / "meetings"], out, RunOptions(tasks=("summary",), summary_from="audio",
                                                                  model="tiny-random", greedy=True, max_new_tokens=6,
                                                                  cache_dir=cache_dir, device="cpu"),
                         show_progress=False)
    return summary, duckdb.sql(f"SELECT status, summary, error FROM '{out}'").fetchall(), heard


def test_an_audio_summary_that_runs_out_of_memory_hears_shorter_parts(tmp_path, cache_dir, tiny_dir, monkeypatch):
    summary, rows, heard = audio_summaries(tmp_path, cache_dir, monkeypatch, longest_that_fits_s=28)
    assert summary.errors == 0 and len(rows) == 2 and {r[0] for r in rows} == {"ok"} and rows[0][1]
    assert heard[0] == 31.9 and len(heard) == 3 and sum(heard[1:]) == pytest.approx(31.9, abs=0.2)


def test_an_audio_summary_too_big_for_any_part_is_an_error_row(tmp_path, cache_dir, tiny_dir, monkeypatch):
    summary, rows, heard = audio_summaries(tmp_path, cache_dir, monkeypatch, longest_that_fits_s=1)
    [(status, text, error)] = rows
    assert summary.errors == 1 and status == "error" and text is None
    assert error.startswith("CUDA out of memory summarising") and "--summary-from text" in error
    assert heard[0] == 31.9 and len(heard) == 2  # the whole recording, then its first chunk alone


def test_words_in_silence_are_emptied_and_kept_raw(tmp_path, cache_dir, tiny_dir):
    import numpy as np
    import soundfile as sf

    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "room_tone.wav", np.random.default_rng(0).normal(0, 1e-4, 16000 * 6).astype("float32"), 16000)
    out = tmp_path / "s.parquet"
    run_corpus([folder], out, RunOptions(tasks=("transcript",), model="tiny-random", greedy=True, max_new_tokens=8,
                                         cache_dir=cache_dir, device="cpu"), show_progress=False)
    transcript, raw, flags, ratio = duckdb.sql(f"SELECT transcript, transcript_raw, flags, speech_ratio "
                                               f"FROM '{out}'").fetchone()
    assert ratio == 0.0
    assert "speech_in_silence:transcript" in flags
    assert transcript == "" and raw  # random weights always say something; the guard keeps it aside


def test_audio_summary_spans_split_long_recordings_at_chunk_edges():
    from omni_caption.pipelines.segment import Segment, TimeSpan
    from omni_caption.pipelines.segmenter import Recording
    from omni_caption.pipelines.summarise import MAX_AUDIO_SUMMARY_S, _audio_spans

    segments = [Segment(TimeSpan(i * 30.0, (i + 1) * 30.0), 1.0) for i in range(200)]  # 100 minutes
    spans = _audio_spans(Recording(None, "sha", None, 6000.0, segments))
    assert spans[0][0] == 0.0 and spans[-1][1] == 6000.0
    assert all(b - a <= MAX_AUDIO_SUMMARY_S for a, b in spans) and len(spans) == 3
    assert all(a1 == b0 for (_, a1), (b0, _) in zip(spans, spans[1:]))


def test_embed_audio_loads_as_a_hugging_face_audio_feature(tmp_path, cache_dir, tiny_dir):
    import datasets
    import numpy as np

    out = tmp_path / "a.parquet"
    run_corpus([EXAMPLES / "meetings"], out, RunOptions(tasks=("caption",), model="tiny-random", greedy=True,
                                                        max_new_tokens=3, cache_dir=cache_dir, device="cpu",
                                                        embed_audio=True), show_progress=False)
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train")
    assert isinstance(ds.features["audio"], datasets.Audio)
    first = ds[0]
    clip = first["audio"]
    samples = np.asarray(clip["array"] if isinstance(clip, dict) else clip.get_all_samples().data[0])
    rate = clip["sampling_rate"] if isinstance(clip, dict) else clip.get_all_samples().sample_rate
    assert rate == 16000
    assert abs(len(samples) / 16000 - (first["end_s"] - first["start_s"])) < 0.05


def test_a_dataset_with_audio_keeps_it_through_runs_without_embed_audio(tmp_path, cache_dir, tiny_dir, monkeypatch):
    """A transcript run after an --embed-audio caption run dropped every clip: the merge took the row from the
    transcript's stage, which carries none. Audio now rides along, and new or redone segments get theirs."""
    from omni_caption.pipelines import embed_audio

    out = tmp_path / "a.parquet"
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(EXAMPLES / "meetings" / "weekly_planning.opus", folder)

    def opts(**extra):
        return RunOptions(**{"model": "tiny-random", "greedy": True, "max_new_tokens": 3, "cache_dir": cache_dir,
                             "device": "cpu", **extra})

    run_corpus([folder], out, opts(tasks=("caption",), embed_audio=True), show_progress=False)
    clips = duckdb.sql(f"SELECT audio.bytes FROM '{out}' ORDER BY segment_index").fetchall()
    assert len(clips) == 2 and all(clip for (clip,) in clips)
    decoded = []
    real_read = embed_audio.AudioFile.read
    monkeypatch.setattr(embed_audio.AudioFile, "read", lambda self, *a: decoded.append(a) or real_read(self, *a))
    run_corpus([folder], out, opts(tasks=("transcript",)), show_progress=False)
    assert duckdb.sql(f"SELECT audio.bytes FROM '{out}' ORDER BY segment_index").fetchall() == clips
    assert decoded == []  # carried from the caption's rows, not decoded again
    shutil.copy(EXAMPLES / "field" / "voice_memo.m4a", folder)
    run_corpus([folder], out, opts(tasks=("caption", "transcript"), max_new_tokens=2), show_progress=False)
    per_file = dict(duckdb.sql(f"SELECT source_path, bool_and(audio.bytes IS NOT NULL) FROM '{out}' "
                               "GROUP BY 1").fetchall())
    assert per_file == {"weekly_planning.opus": True, "voice_memo.m4a": True}
