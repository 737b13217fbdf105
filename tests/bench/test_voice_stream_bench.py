"""The GPU voice benchmark's model builder, checked on the meta device (no memory, no GPU)."""

from omni_caption.model import LoadOptions, load_model
from tests.bench import load_bench


def test_full_shapes_match_the_released_parameter_counts(tiny_dir, cache_dir):
    bench = load_bench("voice_stream")
    tiny = load_model("tiny-random", LoadOptions(voice=True, cache_dir=cache_dir))
    model = bench.full_shapes_model(tiny, device="meta")
    billions = {name: sum(p.numel() for p in getattr(model, name).parameters()) / 1e9
                for name in ("thinker", "talker", "code2wav")}
    # Qwen3-Omni report: thinker 30B-A3B, talker 3B-A0.3B MoE, code2wav about 200M.
    assert 30.0 < billions["thinker"] < 31.0
    assert 3.0 < billions["talker"] < 3.6
    assert 0.15 < billions["code2wav"] < 0.3
    assert model.code2wav.total_upsample == 1920
    # The special ids still point at the tokenizer the benchmark feeds it.
    assert model.config.im_end_token_id == tiny.model.config.im_end_token_id


def test_a_released_config_supplies_the_shapes(tiny_dir, cache_dir):
    bench = load_bench("voice_stream")
    tiny = load_model("tiny-random", LoadOptions(voice=True, cache_dir=cache_dir))
    released = bench.full_shapes_model(tiny, device="meta").config.to_dict()
    released["talker_config"]["text_config"]["num_hidden_layers"] = 10  # a config that differs from the defaults
    model = bench.full_shapes_model(tiny, device="meta", released=released)
    assert len(model.talker.model.layers) == 10
    assert model.config.talker_config.speaker_id == released["talker_config"]["speaker_id"]
