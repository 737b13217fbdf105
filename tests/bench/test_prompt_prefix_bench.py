"""The shared-prefix measurement: what it counts, on tiny-random's real template and processor."""

import json

from tests.bench import load_bench


def test_shared_prefix_length():
    bench = load_bench("prompt_prefix")
    assert bench.shared_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert bench.shared_prefix_length([[5, 6], [5, 6]]) == 2
    assert bench.shared_prefix_length([[1], [2]]) == 0


def test_the_shared_prefix_stops_where_the_audio_starts(tiny_dir, cache_dir, tmp_path, capsys):
    bench = load_bench("prompt_prefix")
    rows = bench.main(["--cache-dir", str(cache_dir), "--json", str(tmp_path / "prefix.json")])
    assert json.loads((tmp_path / "prefix.json").read_text()) == rows
    assert [r["task"] for r in rows] == ["caption", "transcript", "reasoning"]
    for row in rows:
        # <|im_start|>user\n<|audio_start|>: the audio placeholders (one id for all clips) must not count.
        assert row["shared_prefix_tokens"] == 4 and row["audio_tokens"] == 390
        assert row["prompt_tokens"] > row["audio_tokens"] + row["shared_prefix_tokens"]
    assert "shared prefix" in capsys.readouterr().out
