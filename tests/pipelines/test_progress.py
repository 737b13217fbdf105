"""Progress: a tqdm bar on a terminal, whole lines into a log."""

import io

import pytest
from tqdm import tqdm

from omni_caption.pipelines import RunOptions, progress, run_corpus
from omni_caption.pipelines.progress import LogLines, RunProgress, progress_bar
from tests.conftest import make_tone


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    return now


def test_a_terminal_gets_a_bar_and_a_log_gets_lines():
    assert isinstance(progress_bar(3, stream=Terminal()), tqdm)
    assert isinstance(progress_bar(3, stream=io.StringIO()), LogLines)
    assert isinstance(progress_bar(3, stream=io.StringIO(), enabled=False), tqdm)  # --quiet: draws nothing


def test_a_run_into_a_log_says_each_stage_then_a_line_a_minute_and_the_end(clock):
    """Each line counts the stage's recordings and audio; the share done and the time left are the run's."""
    log = io.StringIO()
    run = RunProgress(recordings=4, stages=2, stream=log, every_s=60)
    run.start_stage("caption [captioner]")
    for _ in range(4):  # a group of one recording, 3600 s of audio, every 30 s
        clock[0] += 30
        run.advance(recordings=1, audio_s=3600)
    run.start_stage("transcript [instruct]")
    clock[0] += 30
    run.advance(recordings=4, audio_s=4 * 3600)
    run.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines == [
        "caption [captioner] (stage 1 of 2): 0/4 recordings, 0% of the run, 0:00:00 elapsed",
        "caption [captioner] (stage 1 of 2): 2/4 recordings, 2.000 h audio, 120.0x realtime, 25% of the run, "
        "0:01:00 elapsed, about 0:03:00 left",
        "caption [captioner] (stage 1 of 2): 4/4 recordings, 4.000 h audio, 120.0x realtime, 50% of the run, "
        "0:02:00 elapsed, about 0:02:00 left",
        "transcript [instruct] (stage 2 of 2): 0/4 recordings, 50% of the run, 0:02:00 elapsed, about 0:02:00 left",
        "transcript [instruct] (stage 2 of 2): 4/4 recordings, 4.000 h audio, 480.0x realtime, 100% of the run, "
        "0:02:30 elapsed",
    ]


def test_one_stage_says_no_stage_number_and_one_recording_is_not_recordings(clock):
    log = io.StringIO()
    run = RunProgress(recordings=1, stream=log, every_s=60)
    run.start_stage("caption [captioner]")
    clock[0] += 90
    run.advance(recordings=1, audio_s=900)
    run.close()
    assert log.getvalue().splitlines() == [
        "caption [captioner]: 0/1 recording, 0% of the run, 0:00:00 elapsed",
        "caption [captioner]: 1/1 recording, 0.250 h audio, 10.0x realtime, 100% of the run, 0:01:30 elapsed"]


def test_time_left_is_reckoned_from_this_runs_work_not_what_it_skipped(clock):
    log = io.StringIO()
    run = RunProgress(recordings=100, stream=log, every_s=60)
    run.start_stage("caption [captioner]", skipped=90)  # done by an earlier run
    clock[0] += 60
    run.advance(recordings=5, audio_s=60)
    assert log.getvalue().splitlines()[-1].endswith("95/100 recordings, 0.017 h audio, 1.0x realtime, 95% of the run, "
                                                    "0:01:00 elapsed, about 0:01:00 left")


def test_time_left_leaves_out_the_start_up_once_work_has_been_reported_twice(clock):
    log = io.StringIO()
    run = RunProgress(recordings=10, stream=log, every_s=60)
    run.start_stage("caption [captioner]")
    clock[0] += 300  # the model loads and the first group is decoded: paid once
    run.advance(recordings=1, audio_s=3600)
    clock[0] += 60  # then a recording a minute
    run.advance(recordings=1, audio_s=3600)
    lines = log.getvalue().splitlines()
    assert lines[1].endswith("1/10 recordings, 1.000 h audio, 12.0x realtime, 10% of the run, 0:05:00 elapsed, "
                             "about 0:45:00 left")  # one report: all it has is the time elapsed
    assert lines[2].endswith("2/10 recordings, 2.000 h audio, 20.0x realtime, 20% of the run, 0:06:00 elapsed, "
                             "about 0:08:00 left")  # 8 more at one a minute, not 8 at three minutes


def test_what_a_later_stage_skips_does_not_count_as_work_in_the_time_left(clock):
    log = io.StringIO()
    run = RunProgress(recordings=50, stages=2, stream=log, every_s=60)
    run.start_stage("caption [captioner]", skipped=48)  # done by an earlier run
    for _ in range(2):
        clock[0] += 60
        run.advance(recordings=1, audio_s=60)
    run.start_stage("transcript [instruct]", skipped=50, has_work=False)  # all of it done before: no line
    run.close()
    assert log.getvalue().splitlines()[-1] == ("caption [captioner] (stage 1 of 2): 50/50 recordings, 0.033 h audio, "
                                               "1.0x realtime, 100% of the run, 0:02:00 elapsed")
    log = io.StringIO()
    run = RunProgress(recordings=50, stages=2, stream=log, every_s=60)
    run.start_stage("caption [captioner]", skipped=48)
    for _ in range(2):
        clock[0] += 60
        run.advance(recordings=1, audio_s=60)
    run.start_stage("transcript [instruct]")  # now 50 recordings to do, none of them done before
    clock[0] += 60
    run.advance(recordings=1, audio_s=60)
    assert log.getvalue().splitlines()[-1].endswith("1/50 recordings, 0.017 h audio, 1.0x realtime, 51% of the run, "
                                                    "0:03:00 elapsed, about 0:49:00 left")  # a minute each


def test_a_short_pass_without_stages_stays_quiet_and_a_long_one_reports(clock):
    quiet = io.StringIO()
    with progress_bar(3, "reading inputs (sha256)", "file", "files", stream=quiet, every_s=60) as bar:
        for _ in range(3):
            clock[0] += 1
            bar.update(1)
    assert quiet.getvalue() == ""
    log = io.StringIO()
    with progress_bar(3, "reading inputs (sha256)", "file", "files", stream=log, every_s=60) as bar:
        for _ in range(3):
            clock[0] += 50
            bar.update(1)
    assert log.getvalue().splitlines() == [
        "reading inputs (sha256): 2/3 files (66%), 0:01:40 elapsed, about 0:00:50 left",
        "reading inputs (sha256): 3/3 files (100%), 0:02:30 elapsed",
    ]


def test_a_group_of_one_long_recording_still_gets_a_moving_line_a_minute(clock):
    log = io.StringIO()
    run = RunProgress(recordings=2, stream=log, every_s=60)
    run.start_stage("caption [captioner]")
    for done_s in (1800, 3600, 5400, 7200):  # a 3 h recording, 30 min of it every 30 s
        clock[0] += 30
        run.within_group(recordings=done_s / 10800, audio_s=done_s)
    clock[0] += 30
    run.advance(recordings=1, audio_s=10800)  # the group is done: its share now counts whole (no line: 30 s)
    clock[0] += 60
    run.within_group(recordings=0.5, audio_s=600)  # half of the next, a 20 min recording
    run.close()
    assert log.getvalue().splitlines() == [
        "caption [captioner]: 0/2 recordings, 0% of the run, 0:00:00 elapsed",
        "caption [captioner]: 0/2 recordings, 1.000 h audio, 60.0x realtime, 16% of the run, 0:01:00 elapsed, "
        "about 0:05:00 left",
        "caption [captioner]: 0/2 recordings, 2.000 h audio, 60.0x realtime, 33% of the run, 0:02:00 elapsed, "
        "about 0:04:00 left",
        "caption [captioner]: 1/2 recordings, 3.167 h audio, 54.3x realtime, 75% of the run, 0:03:30 elapsed, "
        "about 0:01:08 left",
    ]


def test_on_a_terminal_the_bar_redraws_as_the_group_goes_on(clock):
    screen = Terminal()
    run = RunProgress(recordings=3, stages=2, stream=screen)
    run.start_stage("caption [captioner]", skipped=1)
    clock[0] += 10
    run.within_group(recordings=0.5, audio_s=1800)
    drawn = screen.getvalue().split("\r")[-1]
    assert drawn.startswith("caption [captioner] (stage 1 of 2):  17%|")  # 1 of 6 recording-stages
    assert drawn.rstrip().endswith("1/3 recordings, 0.500 h audio, 180.0x realtime]")


@pytest.mark.parametrize("stage", ["caption", "speakers", "summary from audio"])
def test_a_run_reports_within_each_group_as_the_model_works_through_it(stage, tmp_path, cache_dir, monkeypatch):
    heard: list[tuple[str, float, float]] = []
    real = RunProgress.within_group

    def within_group(self, recordings, audio_s):
        heard.append((self._bar.desc, recordings, audio_s))
        real(self, recordings, audio_s)

    monkeypatch.setattr(RunProgress, "within_group", within_group)
    folder = tmp_path / "in"
    folder.mkdir()
    for i, seconds in enumerate((50.0, 30.0)):
        make_tone(folder / f"tone{i}.flac", seconds=seconds, freq=300 + 100 * i)
    tasks = {"caption": ("caption",), "speakers": ("caption",), "summary from audio": ("summary",)}[stage]
    summary = run_corpus([folder], tmp_path / "out.parquet", RunOptions(
        tasks=tasks, model="tiny-random", greedy=True, max_new_tokens=4, cache_dir=cache_dir, device="cpu",
        batch_size=1, max_chunk_s=10.0, group_recordings=2, diarize=stage == "speakers",
        diarize_model="tiny-random", summary_from="audio"))
    assert summary.errors == 0
    label = {"caption": "caption [", "speakers": "speakers [", "summary from audio": "summary ["}[stage]
    heard = [(recordings, audio_s) for desc, recordings, audio_s in heard if desc.startswith(label)]
    if stage == "caption":  # after each batch of one 10 s segment: 8 of them
        assert len(heard) == 8
    else:  # after each recording
        assert heard == [pytest.approx((1, 50.0), abs=0.1), pytest.approx((2, 80.0), abs=0.1)]
    assert all(b[0] > a[0] and b[1] > a[1] for a, b in zip(heard, heard[1:]))  # it only moves forward
    assert heard[-1] == pytest.approx((2, 80.0), abs=0.1)  # the whole group at the end


def test_on_a_terminal_no_frame_mixes_one_stages_name_or_share_with_anothers_counts(clock):
    """A new stage's '0/2 recordings' was drawn for an instant under the last stage's name, and a group's
    '2/2 recordings' beside the share from before it."""
    screen = Terminal()
    run = RunProgress(recordings=2, stages=2, stream=screen)
    run.start_stage("caption [captioner]")
    clock[0] += 10
    run.advance(recordings=2, audio_s=3600)
    run.start_stage("summary [thinking]", skipped=1)  # one summary was done by an earlier run
    clock[0] += 10
    run.advance(recordings=1, audio_s=1800)
    run.close()
    frames = [frame for frame in screen.getvalue().split("\r") if "%|" in frame and "recording" in frame]
    assert len(frames) >= 3
    for frame in frames:
        stage = 1 if frame.startswith("summary [thinking] (stage 2 of 2)") else 0
        share = int(frame.split("%|")[0].split()[-1])
        done = int(frame.split("<")[1].split(", ")[1].split("/")[0])  # '[00:10<00:10, 2/2 recordings, ...'
        assert share == 50 * stage + 25 * done, frame
