"""The span-reading benchmark runs end to end on a short file and reports every way."""

import json

from tests.bench import load_bench


def test_chunk_spans_tile_the_file_and_come_sorted_by_duration():
    spans = load_bench("read_spans").chunk_spans(600.0)
    ordered = sorted(spans)
    assert ordered[0][0] == 0.0 and ordered[-1][1] == 600.0
    assert all(a[1] == b[0] and 20.0 <= a[1] - a[0] <= 30.0 for a, b in zip(ordered, ordered[1:]))
    lengths = [e - s for s, e in spans]
    assert lengths == sorted(lengths) and ordered != spans  # not in time order: that is the point


def test_every_way_is_timed(tmp_path, capsys):
    rows = load_bench("read_spans").main(["--minutes", "1", "--formats", "flac", "--json", str(tmp_path / "r.json")])
    assert [(r["format"], r["way"]) for r in rows] == [("flac", "range"), ("flac", "forward"), ("flac", "cache")]
    assert all(r["seconds"] > 0 and r["x_realtime"] > 0 for r in rows)
    assert json.loads((tmp_path / "r.json").read_text()) == rows
    assert "x realtime" in capsys.readouterr().out
