"""The GPU throughput benchmark: full shapes on the meta device (no memory), end to end on tiny-random."""

import json

import pytest

from omni_caption.model.batch_sizing import MemoryModel
from tests.bench import load_bench


def test_full_shapes_are_the_released_thinker():
    bench = load_bench("thinker_shapes")
    config = bench.full_thinker_config()
    thinker = bench.build_thinker(config, "meta")
    billions = sum(p.numel() for p in thinker.parameters()) / 1e9
    text_billions = sum(p.numel() for p in thinker.model.language_model.parameters()) / 1e9
    assert 30.0 < text_billions < 31.0  # Qwen3-Omni report: the thinker's MoE LLM is 30B-A3B
    assert 31.0 < billions < 32.5  # plus the AuT audio encoder and the vision encoder
    assert MemoryModel.from_text_config(config.text_config).kv_bytes_per_token == 96 * 1024


def test_queue_caption_lengths_vary_around_the_mean():
    queue = load_bench("decode_queue")
    lengths = queue.caption_lengths(256, 400)
    assert lengths == queue.caption_lengths(256, 400)  # a fixed seed: runs compare
    assert 100 <= min(lengths) < 300 and 500 < max(lengths) <= 700
    assert 380 < sum(lengths) / len(lengths) < 420
    looping = queue.caption_lengths(256, 400, long_share=0.02, long_len=2048)
    assert [a for a, b in zip(looping, lengths) if a != b] == [2048] * 5  # the rest drawn as before
    stopped = queue.caption_lengths(256, 400, long_share=0.02, long_len=2048, loop_stop_after=136)
    assert [a - b for a, b in zip(stopped, lengths) if a != b] == [136] * 5  # the same captions, stopped


def test_speed_arithmetic():
    bench = load_bench("throughput_report")
    # 64 clips of 30 s: prefill 2 s, then 400 steps of 18 ms (the memory roofline of the issue).
    assert bench.caption_speed(64, 30.0, 2.0, 0.018) == pytest.approx(64 * 30 / 9.2)
    assert bench.corpus_speed(300.0, 240.0) == pytest.approx(36000 / (120 + 240))  # warm-up counts once
    assert bench.corpus_speed(300.0, 0.0) == pytest.approx(300.0)


def test_tiny_end_to_end_writes_the_table_and_json(tmp_path, cache_dir, tiny_dir, capsys):
    bench = load_bench("gpu_throughput")
    out = tmp_path / "bench.json"
    report = bench.main(["--tiny", "--batches", "1,3", "--engine-batches", "4", "--new-tokens", "6",
                         "--json", str(out), "--cache-dir", str(cache_dir), "--clip-s", "4",
                         "--queue-slots", "2", "--caption-tokens", "12", "--queue-batches", "1,4"])
    runs = [(r.decoder, r.batch, r.clips, r.status) for r in report.runs]
    assert runs == [("plain", 1, None, "ok"), ("plain", 3, None, "ok"), ("engine", 1, None, "ok"),
                    ("engine", 3, None, "ok"), ("refill-queue", 2, 2, "ok"), ("static-queue", 2, 2, "ok"),
                    ("refill-queue", 2, 8, "ok"), ("static-queue", 2, 8, "ok"), ("engine", 4, None, "ok")]
    refill, static = report.runs[6:8]
    assert refill.cache_len == static.cache_len
    assert 0 < refill.slot_use <= 1 and 0 < static.slot_use <= 1
    engine_3 = report.runs[3]
    assert engine_3.padded_batch == 4 and engine_3.cache_len == 256 and engine_3.decode_ms_per_step > 0
    assert all(r.x_realtime > 0 and r.tok_per_s > 0 for r in report.runs)
    assert json.loads(out.read_text())["runs"][3]["padded_batch"] == 4
    assert report.tokenise_ms_per_clip > 0 and report.pipeline_auto is None  # no GPU memory to size from
    assert "decoder | batch | clips | cache | ms/step" in capsys.readouterr().out


def test_pipeline_auto_on_an_h100_sized_memory(monkeypatch):
    """What a caption stage's `--batch-size auto` takes on an H100 after the 30B-A3B thinker (18.6 GiB free)."""
    from omni_caption.model import decode_runtime

    shapes = load_bench("thinker_shapes")
    config = shapes.full_thinker_config()
    thinker = shapes.build_thinker(config, "meta")
    monkeypatch.setattr(decode_runtime, "free_gpu_bytes", lambda device: int(18.6 * 2**30))
    auto = load_bench("decode_queue").pipeline_auto(thinker, MemoryModel.from_text_config(config.text_config))
    assert auto == {"free_gib": 18.6, "caption_cap": 2048, "cache_len": 2560, "fixed_batch": 32, "refill_slots": 112,
                    "slot_cache_len": 1536, "prefill_rows": 6}


def test_queue_runs_at_the_pipelines_own_batch(tmp_path, cache_dir, tiny_dir, monkeypatch):
    """`--queue-slots auto`: the slots, their length (prompt + half the 2048-token caption cap), the full length
    and the prefill chunk a caption stage takes in this memory (30 MiB for tiny-random here: 16 slots of 1536
    positions, chunks of 4 rows)."""
    from omni_caption.model import decode_runtime

    bench = load_bench("gpu_throughput")
    base = ["--tiny", "--batches", "1", "--engine-batches", "", "--new-tokens", "2", "--cache-dir", str(cache_dir),
            "--clip-s", "4", "--caption-tokens", "6", "--queue-batches", "1", "--json", str(tmp_path / "b.json")]
    with pytest.raises(SystemExit):
        bench.main(base + ["--queue-slots", "auto"])  # no GPU memory to size from
    monkeypatch.setattr(decode_runtime, "free_gpu_bytes", lambda device: 30 * 2**20)
    report = bench.main(base + ["--queue-slots", "auto"])
    assert report.pipeline_auto == {"free_gib": 0.0, "caption_cap": 2048, "cache_len": 2560, "fixed_batch": 4,
                                    "refill_slots": 16, "slot_cache_len": 1536, "prefill_rows": 4}
    refill, static = report.runs[2:]
    assert (refill.decoder, refill.batch, refill.clips, refill.cache_len) == ("refill-queue", 16, 16, 1536)
    assert (static.decoder, static.batch, static.cache_len) == ("static-queue", 16, 2560)


def test_long_captions_outgrow_short_slots_and_go_on(tmp_path, cache_dir, tiny_dir):
    """A quarter of the captions loop to 256 tokens: slots of 256 positions (prompt + 12-token captions need
    under 100) hold the rest, and those go on in a full-length round; a static queue decodes their whole
    batches to 256."""
    bench = load_bench("gpu_throughput")
    report = bench.main(["--tiny", "--batches", "1", "--engine-batches", "", "--new-tokens", "2",
                         "--cache-dir", str(cache_dir), "--clip-s", "4", "--caption-tokens", "12",
                         "--queue-slots", "4", "--queue-batches", "2", "--long-captions", "0.25",
                         "--slot-cache-len", "256", "--json", str(tmp_path / "b.json")])
    refill, static = report.runs[2:]
    assert refill.continued == 2 and refill.cache_len == 256 and refill.new_tokens == static.new_tokens == 256
    assert static.cache_len > 256 and static.continued is None
    assert refill.slot_use > static.slot_use


def test_queue_plan_runs_every_slot_count_loop_stop_length_and_kind():
    queue = load_bench("decode_queue")
    auto = {"refill_slots": 112, "slot_cache_len": 1536}
    plan = queue.queue_plan("auto,64,0", "4", "136,0", "refill", auto)
    assert [(q.kind, q.slots, q.batches, q.loop_stop_after, q.pipeline is auto) for q in plan] == [
        ("refill", 112, 4, 136, True), ("refill", 112, 4, 0, True),
        ("refill", 64, 4, 136, False), ("refill", 64, 4, 0, False)]
    assert [(q.kind, q.batches) for q in queue.queue_plan("2", "1,4", "0", "refill,static", None)] == [
        ("refill", 1), ("static", 1), ("refill", 4), ("static", 4)]
    with pytest.raises(ValueError, match="needs a GPU"):
        queue.queue_plan("auto", "4", "0", "refill", None)
    with pytest.raises(ValueError, match="refill or static"):
        queue.queue_plan("64", "4", "0", "refil", None)
    assert queue.loops_label(0.01, 136) == "1% stop +136" and queue.loops_label(0.01, 0) == "1% to cap"
    assert queue.loops_label(0.0, 136) is None


def test_one_process_runs_the_loop_stop_and_its_absence_side_by_side(tmp_path, cache_dir, tiny_dir, capsys):
    """The owed GPU queue calls in one: with and without the loop stop, refill only; the stopped loopers end
    40 tokens past their drawn length, so their queue decodes fewer steps than the one whose loopers reach 256."""
    bench = load_bench("gpu_throughput")
    report = bench.main(["--tiny", "--batches", "1", "--engine-batches", "", "--new-tokens", "2",
                         "--cache-dir", str(cache_dir), "--clip-s", "4", "--caption-tokens", "12",
                         "--queue-slots", "4", "--queue-batches", "2", "--queue-kinds", "refill",
                         "--long-captions", "0.25", "--loop-stop-after", "40,0", "--json", str(tmp_path / "b.json")])
    stopped, looping = report.runs[2:]
    assert [r.decoder for r in report.runs] == ["plain", "engine", "refill-queue", "refill-queue"]
    assert (stopped.loops, looping.loops) == ("25% stop +40", "25% to cap")
    assert stopped.new_tokens < 60 < looping.new_tokens == 256
    assert stopped.clips_per_kstep > looping.clips_per_kstep
    assert "25% stop +40" in capsys.readouterr().out
