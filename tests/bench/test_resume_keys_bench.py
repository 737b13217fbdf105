"""bench/resume_keys.py writes an archive of settled recorder-sized WAVs and reports all three ways."""

from __future__ import annotations

import json
import time

from tests.bench import load_bench


def test_archive_files_are_recorder_sized_and_settled(tmp_path):
    bench = load_bench("resume_keys")
    sources = bench.write_archive(tmp_path, files=2, minutes=0.1)
    assert [s.path.stat().st_size for s in sources] == [bench.RECORDER_BYTES_PER_MINUTE // 10] * 2
    assert all(time.time_ns() - s.path.stat().st_mtime_ns > 3000 * 10**9 for s in sources)
    assert sources[0].sha256() != sources[1].sha256()


def test_main_reports_every_way(tmp_path, capsys):
    out = tmp_path / "r.json"
    results = load_bench("resume_keys").main(["--files", "2", "--minutes", "0.05", "--json", str(out)])
    assert json.loads(out.read_text()) == results and results["megabytes"] == 1
    printed = capsys.readouterr().out
    assert all(f"  {way} " in printed for way in ("read", "first", "resumed"))
