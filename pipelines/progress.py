"""A tqdm bar over recordings x stages, with audio-hours and x realtime."""

from __future__ import annotations

import sys
import time


class RunProgress:
    def __init__(self, total: int, enabled: bool = True):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, unit="rec", disable=not enabled, file=sys.stderr, dynamic_ncols=True)
        self._audio_s = 0.0
        self._started = time.monotonic()

    def set_stage(self, name: str) -> None:
        self._bar.set_description(name)

    def advance(self, recordings: int, audio_s: float) -> None:
        self._audio_s += audio_s
        elapsed = max(time.monotonic() - self._started, 1e-9)
        self._bar.set_postfix_str(f"{self._audio_s / 3600:.3f} h audio, {self._audio_s / elapsed:.1f}x realtime")
        self._bar.update(recordings)

    def skip(self, recordings: int) -> None:
        """Recordings this stage already finished in an earlier run."""
        if recordings:
            self._bar.update(recordings)

    def close(self) -> None:
        self._bar.close()
