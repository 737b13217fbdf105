"""The static-cache engine against transformers' `generate` on tiny-random (CPU, uncompiled)."""

import pytest
import torch

from omni_caption.model import DecodingOptions, Prompt, generate_batch
from omni_caption.model import decode_engine, generation
from omni_caption.model.decode_engine import EngineOptions, StaticDecoder
from tests.model.test_generation import clips

GREEDY = DecodingOptions(max_new_tokens=12)


@pytest.fixture
def decoder(tiny):
    return StaticDecoder(tiny.model.thinker, EngineOptions(max_batch=8, length_quantum=64))


def assert_same(plain, engine):
    assert [r.token_ids for r in engine] == [r.token_ids for r in plain]
    assert [r.hit_token_cap for r in engine] == [r.hit_token_cap for r in plain]
    for p, e in zip(plain, engine):
        assert e.mean_logprob == pytest.approx(p.mean_logprob, abs=1e-4)


@pytest.mark.parametrize("count", [4, 3, 1])  # 3 runs padded to a bucket of 4
def test_greedy_tokens_equal_plain_generate(tiny, decoder, count):
    audios = clips()[:count]
    plain = generate_batch(tiny, audios, Prompt(), GREEDY)
    engine = generate_batch(tiny, audios, Prompt(), GREEDY, decoder=decoder)
    assert_same(plain, engine)
    assert len({r.token_ids for r in engine}) == count  # rows differ, so equality says something


def test_text_prompt_and_repetition_penalty_equal_plain(tiny, decoder):
    decoding = DecodingOptions(max_new_tokens=16, repetition_penalty=1.3)
    prompt = Prompt(text="What do you hear?", system="You are a helpful assistant.")
    assert_same(generate_batch(tiny, clips(), prompt, decoding),
                generate_batch(tiny, clips(), prompt, decoding, decoder=decoder))


def test_sampling_equals_plain_when_no_bucket_padding(tiny, decoder):
    decoding = DecodingOptions(max_new_tokens=16, do_sample=True, temperature=0.6, top_p=0.95, top_k=20, seed=3)
    assert_same(generate_batch(tiny, clips(), Prompt(), decoding),
                generate_batch(tiny, clips(), Prompt(), decoding, decoder=decoder))


def test_end_of_turn_stops_each_row_like_plain(tiny, monkeypatch):
    """Pretend the token each row emits at step 3 (or 6) ends the turn: rows stop early, at different steps."""
    audios = clips()
    free_run = generate_batch(tiny, audios, Prompt(), GREEDY)
    stops = sorted({free_run[0].token_ids[3], free_run[1].token_ids[6]})
    monkeypatch.setattr(generation, "end_of_turn_ids", lambda omni: stops)
    decoder = StaticDecoder(tiny.model.thinker, EngineOptions(max_batch=8, length_quantum=64, sync_every=1))
    plain = generate_batch(tiny, audios, Prompt(), GREEDY)
    engine = generate_batch(tiny, audios, Prompt(), GREEDY, decoder=decoder)
    assert_same(plain, engine)
    assert plain[0].num_tokens <= 3 and not plain[0].hit_token_cap


def test_decoding_ends_once_every_row_is_done(tiny, decoder, monkeypatch):
    inputs = generation.prepare_inputs(tiny, clips()[:2], Prompt())
    free = decoder.decode(inputs, GREEDY, eos_ids=[], pad_id=0)
    assert free.tokens.shape == (2, GREEDY.max_new_tokens)  # no end token: the cap, as forced in benchmarks
    stops = [int(free.tokens[0, 1]), int(free.tokens[1, 2])]
    quick = StaticDecoder(tiny.model.thinker, EngineOptions(length_quantum=64, sync_every=2))
    stopped = quick.decode(inputs, GREEDY, eos_ids=stops, pad_id=0)
    assert stopped.tokens.shape[1] <= 4  # both rows ended by step 3; one more sync interval at most
    assert stopped.tokens[0, :2].tolist() == free.tokens[0, :2].tolist()


def test_visible_padding_is_detected(tiny, decoder, monkeypatch):
    """Negative control: a cache mask that lets rows see their left padding must change the tokens."""
    monkeypatch.setattr(decode_engine._ShapeSlot, "reset", lambda slot, prompt_mask: (slot.cache.reset(),
                                                                                      slot.mask.fill_(1)))
    plain = generate_batch(tiny, clips(), Prompt(), GREEDY)
    engine = generate_batch(tiny, clips(), Prompt(), GREEDY, decoder=decoder)
    assert [r.token_ids for r in engine] != [r.token_ids for r in plain]


def test_a_gap_in_positions_is_detected(tiny, decoder, monkeypatch):
    """Negative control: positions that jump before the last prompt token must change the tokens."""
    original = decode_engine.prompt_positions

    def with_gap(thinker, inputs):
        positions = original(thinker, inputs).clone()
        positions[..., -1] += 5
        return positions

    monkeypatch.setattr(decode_engine, "prompt_positions", with_gap)
    plain = generate_batch(tiny, clips(), Prompt(), GREEDY)
    engine = generate_batch(tiny, clips(), Prompt(), GREEDY, decoder=decoder)
    assert [r.token_ids for r in engine] != [r.token_ids for r in plain]


def test_shapes_are_bucketed_and_caches_bounded(tiny):
    decoder = StaticDecoder(tiny.model.thinker, EngineOptions(max_batch=64, length_quantum=256, kept_shapes=2))
    assert decoder.shape_for(3, 100, 24) == (4, 256)
    assert decoder.shape_for(33, 300, 2048) == (64, 2560)
    assert decoder.shape_for(64, 10, 1) == (64, 256)
    bounded = StaticDecoder(tiny.model.thinker, EngineOptions(min_cache_len=2400))
    assert bounded.shape_for(3, 100, 24) == bounded.shape_for(3, 300, 2048) == (4, 2560)  # one shape per stage
    assert not decoder.compiled  # CPU: eager static path
    for count in (1, 2, 4):
        decoder.decode(generation.prepare_inputs(tiny, clips()[:count], Prompt()), DecodingOptions(max_new_tokens=2),
                       eos_ids=[], pad_id=0)
    assert list(decoder._slots) == [(2, 256), (4, 256)]
    decoder.release()
    assert not decoder._slots


def test_experts_implementation_is_restored(tiny):
    thinker = tiny.model.thinker
    before = thinker.get_experts_implementation()
    seen = []
    decoder = StaticDecoder(thinker, EngineOptions(experts="batched_mm", length_quantum=64))
    original = decoder._step

    def spy(*args):
        seen.append(thinker.config.text_config._experts_implementation)
        return original(*args)

    decoder._step = spy
    decoder.decode(generation.prepare_inputs(tiny, clips()[:1], Prompt()), DecodingOptions(max_new_tokens=3),
                   eos_ids=[], pad_id=0)
    assert seen == ["batched_mm", "batched_mm"]
    assert thinker.get_experts_implementation() == before
    assert torch.is_inference_mode_enabled() is False


def test_loop_stop_gives_plain_generates_tokens_and_ends_the_batch_early(tiny, decoder):
    from tests.model.test_loop_stop import STOPPED_120
    from tests.model.test_refill_engine import six_clips

    audios = six_clips()
    plain = generate_batch(tiny, audios, Prompt(), STOPPED_120)
    assert any(r.loop_stopped for r in plain) and not all(r.loop_stopped for r in plain)
    engine = generate_batch(tiny, audios, Prompt(), STOPPED_120, decoder=decoder)
    assert_same(plain, engine)
    assert [r.loop_stopped for r in engine] == [r.loop_stopped for r in plain]
    alone = [generate_batch(tiny, [audio], Prompt(), STOPPED_120)[0] for audio in audios]
    looper = min(range(len(audios)), key=lambda i: alone[i].num_tokens)
    alone = alone[looper]
    assert alone.loop_stopped and alone.num_tokens < 100
    inputs = generation.prepare_inputs(tiny, [audios[looper]], Prompt())
    decoded = decoder.decode(inputs, STOPPED_120, generation.end_of_turn_ids(tiny), 0)
    # Caught at the first sync (every 8 steps) after the loop began, not at the cap.
    assert alone.num_tokens <= decoded.tokens.shape[1] < alone.num_tokens + decoder.options.sync_every
