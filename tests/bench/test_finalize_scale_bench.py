"""The finalize benchmark runs end to end at a small size, and both ways write the same dataset."""

import subprocess
import sys

from tests.conftest import REPO


def test_both_ways_agree_on_a_small_store(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "bench" / "finalize_scale.py"), "--rows", "3000",
                             "--recordings", "30", "--new-share", "0.5", "--out", str(tmp_path / "bench")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "outputs equal: True  (3,000 rows)" in result.stdout  # the error recording kept as its one row
    for way in ("objects", "chunked"):
        assert f"  {way} " in result.stdout and "peak RSS" in result.stdout


def test_the_rerun_way_finds_a_store_without_parts_current(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "bench" / "finalize_scale.py"), "--rows", "3000",
                             "--recordings", "30", "--new-share", "0", "--ways", "chunked,rerun", "--out",
                             str(tmp_path / "bench")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "  rerun " in result.stdout and "0 parts" in result.stdout
    with_parts = subprocess.run([sys.executable, str(REPO / "bench" / "finalize_scale.py"), "--rows", "3000",
                                 "--recordings", "30", "--new-share", "0.5", "--ways", "rerun", "--out",
                                 str(tmp_path / "bench2")], capture_output=True, text=True, timeout=300)
    assert with_parts.returncode == 1 and "not found current" in with_parts.stderr
