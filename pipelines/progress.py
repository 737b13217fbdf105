"""Progress over recordings x stages, with audio-hours and x realtime.

On a terminal it is a tqdm bar. Into a log (a batch job's stderr, `2> run.log`)
a redrawn bar is one ever-growing line of carriage returns, so there it is a
plain line as each stage starts, then at most every `LOG_EVERY_S`, and one at
the end (a pass with no stages, like hashing the inputs, only if it ran that long).
"""

from __future__ import annotations

import datetime
import sys
import time
from collections.abc import Callable
from typing import TextIO

LOG_EVERY_S = 60.0

# How far a stage has got with the group in hand, before the group is done and committed: (recordings' worth of
# its work done, which may be a fraction; seconds of its audio done). A group can be one recording of hours.
PartialProgress = Callable[[float, float], None]


def _clock(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))


class LogLines:
    """The part of tqdm's interface the run uses, written as whole lines."""

    def __init__(self, total: int, desc: str = "", unit: str = "", stream: TextIO | None = None,
                 every_s: float = LOG_EVERY_S):
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.n = 0
        self._postfix = ""
        self._started = self._last = time.monotonic()
        self._told: int | None = None  # the count at the last line; None before the first
        self._skipped = 0  # done before this run: not part of the rate the time left is reckoned from
        self.partial = 0.0  # recordings' worth done in the group in hand, not yet counted in `n`
        # (when, how much worked) at the first report of work: the rate after it leaves out the start-up (a
        # model's load, the first group's decoding), which is paid once and would inflate the time left
        self._first_work: tuple[float, float] | None = None

    def set_description(self, desc: str) -> None:
        """A new stage: said at once, as its model may take minutes to load."""
        if desc != self.desc:
            self.desc = desc
            self._line()

    def set_postfix_str(self, postfix: str, refresh: bool = True) -> None:  # tqdm's signature; a line is drawn later
        self._postfix = postfix

    def update(self, n: int = 1) -> None:
        self.n += n
        self._note_work()
        self._line_if_due()

    def skip(self, n: int) -> None:
        self._skipped += n
        self.n += n
        self._line_if_due()

    def set_partial(self, recordings: float) -> None:
        """Work done in the group in hand: in the share done and the time left, so a group of one recording
        of hours still gets a line a minute that moves."""
        self.partial = recordings
        self.update(0)

    def close(self) -> None:
        """The last count, where there were lines before it: a run shorter than one interval stays quiet."""
        if self._told is not None and self.n != self._told:
            self._line()

    def _line_if_due(self) -> None:
        if time.monotonic() - self._last >= self.every_s:
            self._line()

    def _note_work(self) -> None:
        worked = self.n + self.partial - self._skipped
        if self._first_work is None and worked > 0:
            self._first_work = (time.monotonic(), worked)

    def _seconds_left(self, now: float, done: float) -> float | None:
        """From the rate since the first report of work once there is a later one; before that, from the
        time elapsed (start-up included)."""
        if done >= self.total:
            return None
        worked = done - self._skipped  # what a later stage skips as done before is no work of this run's
        if self._first_work is not None and worked > self._first_work[1] and now > self._first_work[0]:
            since, worked_then = self._first_work
            return (now - since) / (worked - worked_then) * (self.total - done)
        return (now - self._started) / worked * (self.total - done) if worked > 0 else None

    def _line(self) -> None:
        now = time.monotonic()
        elapsed = now - self._started
        done = self.n + self.partial
        share = f"{int(100 * done / self.total)}%" if self.total else ""
        if self.unit:
            parts = [f"{self.n}/{self.total} {self.unit}" + (f" ({share})" if share else "")]
            parts += [self._postfix] if self._postfix else []
        else:  # the postfix says what is counted (a stage's recordings); the share is the whole's
            parts = ([self._postfix] if self._postfix else []) + ([f"{share} of the run"] if share else [])
        parts.append(f"{_clock(elapsed)} elapsed")
        left = self._seconds_left(now, done)
        if left is not None:
            parts.append(f"about {_clock(left)} left")
        print(f"{self.desc}: " * bool(self.desc) + ", ".join(parts), file=self.stream, flush=True)
        self._last, self._told = now, self.n

    def __enter__(self) -> "LogLines":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# The run's bar: its share done, the stage's own counts (the postfix), and the time (no count of its own units).
RUN_BAR_FORMAT = "{desc}{percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"  # tqdm puts ": " after a desc


def progress_bar(total: int, desc: str = "", unit: str = "", noun: str = "", enabled: bool = True,
                 leave: bool = True, stream: TextIO | None = None, every_s: float = LOG_EVERY_S,
                 bar_format: str | None = None):
    """A tqdm bar counting `unit`s on a terminal, LogLines counting `noun`s into anything else;
    disabled, a tqdm that draws nothing. Without a unit, the postfix says what is counted and the line
    gives the share of the whole that is done."""
    from tqdm.auto import tqdm

    stream = stream or sys.stderr
    if enabled and not _is_terminal(stream):
        return LogLines(total, desc, noun or unit, stream, every_s)
    return tqdm(total=total, desc=desc or None, unit=unit or "it", disable=not enabled, leave=leave, file=stream,
                dynamic_ncols=True, bar_format=bar_format)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or not a real file
        return False


class RunProgress:
    """The stage in hand (its recordings, audio hours and x realtime), then the run's share done and time
    left over every stage. Counting over all stages at once said '6/6 recordings' for a run of 2 through 3
    stages, and summed each stage's pass over the audio into three times its hours and x realtime."""

    def __init__(self, recordings: int, stages: int = 1, enabled: bool = True, stream: TextIO | None = None,
                 every_s: float = LOG_EVERY_S):
        self.recordings, self.stages = recordings, stages
        self._bar = progress_bar(recordings * stages, enabled=enabled, stream=stream, every_s=every_s,
                                 bar_format=RUN_BAR_FORMAT)
        self._index = 0
        self._done = 0  # the stage's recordings done, by this run or an earlier one
        self._audio_s = 0.0  # of the stage's groups done
        self._started = time.monotonic()

    def start_stage(self, name: str, skipped: int = 0, has_work: bool = True) -> None:
        """The next stage: `skipped` of its recordings were done by an earlier run; one with no work left
        only counts them, with no line of its own."""
        self._index += 1
        if has_work:  # else the last line keeps the counts of the stage it names
            self._done, self._audio_s, self._started = skipped, 0.0, time.monotonic()
            self._show(0.0, refresh=False)  # drawn with the stage's name, not under the last one's
        if skipped:
            getattr(self._bar, "skip", self._bar.update)(skipped)
        if has_work:
            self._bar.set_description(name if self.stages == 1 else f"{name} (stage {self._index} of {self.stages})")

    def advance(self, recordings: int, audio_s: float) -> None:
        """A group is done (and committed)."""
        self._done += recordings
        self._audio_s += audio_s
        self._show(0.0, refresh=False)  # the update below draws it, with the share that goes with it
        if isinstance(self._bar, LogLines):
            self._bar.partial = 0.0  # now counted in whole recordings, by the update below
        self._bar.update(recordings)

    def within_group(self, recordings: float, audio_s: float) -> None:
        """PartialProgress: how far the group in hand has got (a tqdm bar redraws with its new postfix)."""
        self._show(audio_s)
        if isinstance(self._bar, LogLines):
            self._bar.set_partial(recordings)

    def _show(self, group_audio_s: float, refresh: bool = True) -> None:
        audio_s = self._audio_s + group_audio_s
        elapsed = max(time.monotonic() - self._started, 1e-9)
        audio = f", {audio_s / 3600:.3f} h audio, {audio_s / elapsed:.1f}x realtime" if audio_s else ""
        self._bar.set_postfix_str(f"{self._done}/{self.recordings} recording{'s' * (self.recordings != 1)}{audio}",
                                  refresh=refresh)

    def close(self) -> None:
        self._bar.close()
