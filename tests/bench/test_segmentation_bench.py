"""bench/segmentation.py builds distinct recordings, with or without espeak-ng, and prints its figures."""

from __future__ import annotations

import sys

import pytest
import soundfile as sf

from tests.bench import load_bench


@pytest.mark.parametrize("espeak", [True, False])
def test_recordings_differ_and_have_the_asked_length(tmp_path, monkeypatch, espeak):
    bench = load_bench("segmentation")
    if not espeak:  # the GPU machine has no espeak-ng
        monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    paths = bench.build_recordings(tmp_path, minutes=0.5, fmt="flac", files=2)
    durations = [sf.info(p).duration for p in paths]
    assert durations == pytest.approx([30.0, 29.0], abs=0.05)
    assert len({p.read_bytes() for p in paths}) == 2


def test_main_segments_every_file_in_threads(tmp_path, monkeypatch, capsys):
    bench = load_bench("segmentation")
    monkeypatch.setattr(sys, "argv", ["segmentation.py", "--minutes", "0.5", "--files", "2", "--format", "flac",
                                      "--segment-threads", "2"])
    bench.main()
    out = capsys.readouterr().out
    assert "2 recording(s) at once, 2 VAD model(s)" in out and "x realtime" in out
