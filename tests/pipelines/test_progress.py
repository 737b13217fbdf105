"""Progress: a tqdm bar on a terminal, whole lines into a log."""

import io

import pytest
from tqdm import tqdm

from omni_caption.pipelines import progress
from omni_caption.pipelines.progress import LogLines, RunProgress, progress_bar


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
    log = io.StringIO()
    run = RunProgress(total=8, stream=log, every_s=60)
    run.set_stage("caption [captioner]")
    for _ in range(4):  # a group of one recording, 3600 s of audio, every 30 s
        clock[0] += 30
        run.advance(recordings=1, audio_s=3600)
    run.set_stage("transcript [instruct]")
    clock[0] += 30
    run.advance(recordings=4, audio_s=4 * 3600)
    run.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines == [
        "caption [captioner]: 0/8 recordings (0%), 0:00:00 elapsed",
        "caption [captioner]: 2/8 recordings (25%), 2.000 h audio, 120.0x realtime, 0:01:00 elapsed, about 0:03:00 left",
        "caption [captioner]: 4/8 recordings (50%), 4.000 h audio, 120.0x realtime, 0:02:00 elapsed, about 0:02:00 left",
        "transcript [instruct]: 4/8 recordings (50%), 4.000 h audio, 120.0x realtime, 0:02:00 elapsed, about 0:02:00 left",
        "transcript [instruct]: 8/8 recordings (100%), 8.000 h audio, 192.0x realtime, 0:02:30 elapsed",
    ]


def test_time_left_is_reckoned_from_this_runs_work_not_what_it_skipped(clock):
    log = io.StringIO()
    run = RunProgress(total=100, stream=log, every_s=60)
    run.skip(90)  # done by an earlier run
    run.set_stage("caption [captioner]")
    clock[0] += 60
    run.advance(recordings=5, audio_s=60)
    assert log.getvalue().splitlines()[-1].endswith("95/100 recordings (95%), 0.017 h audio, 1.0x realtime, "
                                                    "0:01:00 elapsed, about 0:01:00 left")


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
