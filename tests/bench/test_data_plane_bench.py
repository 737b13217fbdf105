"""bench/data_plane.py runs the main job once per --segment-threads value over the same files."""

from __future__ import annotations

from tests.bench import load_bench


def test_each_thread_count_is_one_fresh_run_over_the_same_files(tmp_path, capsys):
    bench = load_bench("data_plane")
    results = bench.main(["--minutes", "0.4", "--files", "2", "--format", "flac", "--segment-threads", "1,2",
                          "--commit-every", "1", "--device", "cpu"])
    assert [r["segment_threads"] for r in results] == [1, 2]
    assert results[0]["segments"] == results[1]["segments"] > 0  # nothing resumed from the first run's output
    assert results[0]["audio_s"] == results[1]["audio_s"] > 40
    assert all(r["x_realtime"] > 0 for r in results)
    assert "segment threads | wall s" in capsys.readouterr().out
