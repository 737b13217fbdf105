"""Groups hold enough audio to fill the model's batches, whatever the recordings' lengths."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from omni_caption.pipelines.grouping import (GROUP_AUDIO_S, MAX_GROUP_RECORDINGS, MIN_GROUP_RECORDINGS, HeaderSeconds,
                                             auto_groups, fixed_groups, group_audio_s)

LENGTHS = st.lists(st.sampled_from([0.0, 2.0, 30.0, 600.0, 2400.0, 7200.0]), max_size=300)


@given(LENGTHS)
def test_auto_groups_keep_order_and_close_as_soon_as_they_hold_enough(lengths):
    items = list(enumerate(lengths))
    groups = auto_groups(items, lambda item: item[1])
    assert [item for group in groups for item in group] == items
    for group in groups[:-1]:  # every group but the last is full, and would not have been one item earlier
        audio = sum(seconds for _, seconds in group)
        assert len(group) == MAX_GROUP_RECORDINGS or (len(group) >= MIN_GROUP_RECORDINGS and audio >= GROUP_AUDIO_S)
        shorter = group[:-1]
        assert len(shorter) < MIN_GROUP_RECORDINGS or sum(seconds for _, seconds in shorter) < GROUP_AUDIO_S
    assert all(len(group) <= MAX_GROUP_RECORDINGS for group in groups)


def test_long_recordings_group_by_sixteen_and_short_clips_by_the_hour():
    assert [len(g) for g in auto_groups(list(range(40)), lambda _: 2400.0)] == [16, 16, 8]
    assert [len(g) for g in auto_groups(list(range(300)), lambda _: 30.0)] == [120, 120, 60]
    assert [len(g) for g in auto_groups(list(range(5000)), lambda _: 0.0)] == [MAX_GROUP_RECORDINGS, 904]
    assert [len(g) for g in fixed_groups(list(range(5)), 2)] == [2, 2, 1]


def test_lengths_are_asked_only_while_a_group_is_short_of_audio():
    asked = []
    auto_groups(list(range(40)), lambda item: asked.append(item) or 7200.0)
    assert asked == [0, 16, 32]  # the first recording of each group already holds an hour


def test_header_seconds_reads_each_file_once_and_gives_0_for_a_bad_one(tmp_path, monkeypatch):
    from tests.conftest import make_tone

    good, bad = make_tone(tmp_path / "a.opus", seconds=3.0), tmp_path / "b.wav"
    bad.write_bytes(b"not audio")
    seconds = HeaderSeconds()
    assert abs(seconds(good) - 3.0) < 0.1 and seconds(bad) == 0.0
    good.unlink()
    assert abs(seconds(good) - 3.0) < 0.1  # remembered: read once per run


def test_groups_hold_four_batches_of_the_slots_that_decode_at_once():
    assert group_audio_s(8, 30.0) == GROUP_AUDIO_S  # a CPU's 8 rows: an hour is more than 4 x 8 x 30 s
    assert group_audio_s(256, 30.0) == 4 * 256 * 30.0  # a GPU's engine: 8.5 h, 1,024 segments of 30 s
    clips = list(range(3000))
    assert [len(g) for g in auto_groups(clips, lambda _: 30.0, group_audio_s(256, 30.0))] == [1024, 1024, 952]
    assert group_audio_s(64, 10.0) == GROUP_AUDIO_S  # 4 x 64 chunks of at most 10 s: 43 minutes
    assert group_audio_s(256, 30.0, workers=4) == 256 * 30.0  # four Ray actors share the four batches
    assert group_audio_s(256, 30.0, workers=16) == GROUP_AUDIO_S
    assert [len(g) for g in auto_groups(clips[:400], lambda _: 30.0, group_audio_s(64, 20.0))] == [171, 171, 58]


def test_planned_slots_before_a_model_loads(monkeypatch):
    from omni_caption.pipelines import options as run_options
    from omni_caption.pipelines.options import RayOptions, RunOptions

    assert RunOptions(batch_size=48).planned_slots() == 48
    assert RunOptions(device="cpu").planned_slots() == 8
    assert RunOptions(device="cuda").planned_slots() == 256
    assert RunOptions(device="cuda:1").planned_slots() == 256
    monkeypatch.setattr(run_options, "_cuda_available", lambda: True)
    assert RunOptions().planned_slots() == 256
    monkeypatch.setattr(run_options, "_cuda_available", lambda: False)
    assert RunOptions().planned_slots() == 8
    assert RunOptions(engine="ray").planned_slots() == 256  # GPU actors elsewhere
    assert RunOptions(engine="ray", ray=RayOptions(num_gpus_per_worker=0)).planned_slots() == 8


def test_vad_runs_on_the_gpu_the_model_runs_on(monkeypatch):
    """A job per GPU (`--device cuda:3`) must not open a CUDA context on cuda:0 for its VAD and diarization."""
    from omni_caption.pipelines import options as run_options
    from omni_caption.pipelines.options import RunOptions

    monkeypatch.setattr(run_options, "_cuda_available", lambda: True)
    assert [RunOptions(device=d).vad_device() for d in ("cuda:3", "cuda", "auto", "cpu")] == \
        ["cuda:3", "cuda", "cuda", "cpu"]
