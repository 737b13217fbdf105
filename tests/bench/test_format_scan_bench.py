"""bench/format_scan.py scans and decodes each format and says which codecs are scanned."""

from __future__ import annotations

import sys

from tests.bench import load_bench


def test_main_prints_a_row_per_format_and_skips_the_scan_of_opus(monkeypatch, capsys):
    bench = load_bench("format_scan")
    monkeypatch.setattr(sys, "argv", ["format_scan.py", "--minutes", "0.3", "--formats", "mp3,m4a,opus"])
    bench.main()
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(rows) == {"mp3", "m4a", "opus"}
    assert rows["mp3"][1:3] == ["mp3", "yes"] and rows["m4a"][1:3] == ["aac", "yes"]
    assert rows["opus"][1:4] == ["opus", "no", "-"]
