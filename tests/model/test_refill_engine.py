"""The refill engine against transformers' `generate` on tiny-random (CPU, uncompiled): each row as if alone."""

import numpy as np
import pytest

from omni_caption.model import AutWindows, DecodingOptions, Prompt, generate_batch, generate_text, windows_from_pauses
from omni_caption.model import generation, refill_engine
from omni_caption.model.refill_engine import RefillDecoder, RefillOptions
from tests.model.test_generation import clips

GREEDY = DecodingOptions(max_new_tokens=12)
GREEDY_30 = DecodingOptions(max_new_tokens=30)


def six_clips():
    """The four test clips plus two more, so two slots are refilled several times."""
    rng = np.random.default_rng(1)
    t = np.arange(int(16000 * 3.3)) / 16000
    chirp = (0.4 * np.sin(2 * np.pi * (200 + 400 * t) * t)).astype(np.float32)
    return clips() + [(0.2 * rng.standard_normal(40000)).astype(np.float32), chirp]


def alone(omni, audios, prompt, decoding, windows=None):
    """Plain `generate`, one segment per call: the reference every refill row must equal."""
    return [generate_batch(omni, [a], prompt, decoding, windows.for_clips([i]) if windows else None)[0]
            for i, a in enumerate(audios)]


def refill(tiny, **options):
    return RefillDecoder(tiny.model.thinker, RefillOptions(length_quantum=64, **options))


def assert_same(plain, engine):
    assert [r.token_ids for r in engine] == [r.token_ids for r in plain]
    assert [r.hit_token_cap for r in engine] == [r.hit_token_cap for r in plain]
    for p, e in zip(plain, engine):
        assert e.mean_logprob == pytest.approx(p.mean_logprob, abs=1e-4)


@pytest.mark.parametrize("slots", [2, 3, 6])
def test_greedy_rows_equal_plain_generate_alone(tiny, slots):
    audios = six_clips()
    engine = generate_batch(tiny, audios, Prompt(), GREEDY, decoder=refill(tiny), slots=slots)
    assert_same(alone(tiny, audios, Prompt(), GREEDY), engine)
    assert len({r.token_ids for r in engine}) == len(audios)  # rows differ, so equality says something


def test_rows_ending_early_free_their_slots_for_the_queue(tiny, monkeypatch):
    """Rows stop at different steps (pretend end-of-turn tokens), so slots are refilled mid-run."""
    audios = six_clips()
    free_run = alone(tiny, audios, Prompt(), GREEDY)
    stops = sorted({free_run[0].token_ids[2], free_run[3].token_ids[5]})
    monkeypatch.setattr(generation, "end_of_turn_ids", lambda omni: stops)
    decoder = refill(tiny, sync_every=1, refill_fraction=0.01)
    rows = generation.prepare_rows(tiny, audios, Prompt())
    run = decoder.decode_rows(rows, GREEDY, stops, 0, slots=2)
    assert run.prefills >= 3  # refills while the other slot was still decoding
    engine = generate_batch(tiny, audios, Prompt(), GREEDY, decoder=decoder, slots=2)
    plain = alone(tiny, audios, Prompt(), GREEDY)
    assert_same(plain, engine)
    assert any(not r.hit_token_cap for r in plain) and any(r.hit_token_cap for r in plain)


def test_text_prompt_and_repetition_penalty_equal_plain_alone(tiny):
    decoding = DecodingOptions(max_new_tokens=16, repetition_penalty=1.3)
    prompt = Prompt(text="What do you hear?", system="You are a helpful assistant.")
    audios = six_clips()[:5]
    assert_same(alone(tiny, audios, prompt, decoding),
                generate_batch(tiny, audios, prompt, decoding, decoder=refill(tiny), slots=2))


def test_text_only_prompts_equal_plain(tiny):
    prompts = [Prompt(text=t) for t in ("Summarise: a dog barks.", "Hello", "Count to three, slowly please.")]
    plain = [generate_text(tiny, [p], GREEDY)[0] for p in prompts]
    assert_same(plain, generate_text(tiny, prompts, GREEDY, decoder=refill(tiny), slots=2))


def test_per_clip_windows_apply_to_each_prefill_group(tiny):
    t = np.arange(int(16000 * 9.5)) / 16000
    audios = [(0.3 * np.sin(2 * np.pi * 300 * t[:int(16000 * s)])).astype(np.float32) for s in (9.5, 4.2, 6.6)]
    windows = AutWindows(per_clip=tuple(windows_from_pauses(c, len(a) / 16000)
                                        for c, a in zip(([3.1, 5.0], [2.2], []), audios)))
    decoding = DecodingOptions(max_new_tokens=8)
    engine = generate_batch(tiny, audios, Prompt(), decoding, windows, decoder=refill(tiny), slots=2)
    assert_same(alone(tiny, audios, Prompt(), decoding, windows), engine)


def test_slots_stay_busy_while_the_queue_lasts(tiny):
    """One long row and four short ones through two slots: the short ones follow each other in one slot."""
    audio = clips()[0]
    rows = generation.prepare_rows(tiny, [audio] * 5, Prompt())
    decoder = refill(tiny, sync_every=1, refill_fraction=0.01)
    run = decoder.decode_rows(rows, GREEDY, eos_ids=[], pad_id=0, slots=2, caps=[8, 2, 2, 2, 2])
    assert [len(t) for t in run.tokens] == [8, 2, 2, 2, 2]
    assert run.prefills == 4  # the first two rows together, then one each time a short row ends
    assert run.busy_slot_steps == 16 and run.steps == 8 and run.slot_use == 1.0
    full = decoder.decode_rows(rows[:1], GREEDY, eos_ids=[], pad_id=0, slots=1)
    for tokens in run.tokens:  # the same clip: every row is a prefix of the same greedy answer
        assert tokens.tolist() == full.tokens[0][:len(tokens)].tolist()


def test_refill_waits_for_enough_free_slots(tiny):
    rows = generation.prepare_rows(tiny, [clips()[0]] * 6, Prompt())
    decoder = refill(tiny, sync_every=1, refill_fraction=0.5)
    run = decoder.decode_rows(rows, GREEDY, eos_ids=[], pad_id=0, slots=4, caps=[6, 6, 2, 2, 2, 2])
    assert run.prefills == 2  # the two short rows end together: half the slots, one prefill for the last two
    assert [len(t) for t in run.tokens] == [6, 6, 2, 2, 2, 2]


def test_prefills_run_in_chunks_of_at_most_prefill_rows(tiny, monkeypatch):
    """Four free slots, chunks of 3: a prefill of 3 rows then 1, and later chunks as slots free; same tokens."""
    audios = six_clips()
    sizes = []
    real_refill = RefillDecoder._refill

    def spy(self, state, cache, slot_ids, group, *args):
        sizes.append(len(group))
        assert len(slot_ids) == len(group) and not set(slot_ids) & {s for s, h in enumerate(state.holder) if h is not None}
        return real_refill(self, state, cache, slot_ids, group, *args)

    monkeypatch.setattr(RefillDecoder, "_refill", spy)
    engine = generate_batch(tiny, audios, Prompt(), GREEDY, decoder=refill(tiny, prefill_rows=3), slots=4)
    assert sizes[:2] == [3, 1] and max(sizes) == 3 and sum(sizes) == len(audios)
    assert_same(alone(tiny, audios, Prompt(), GREEDY), engine)
    sizes.clear()
    generate_batch(tiny, audios, Prompt(), GREEDY, decoder=refill(tiny), slots=4)
    assert sizes[0] == 4  # without a bound every free slot is prefilled at once


def test_a_row_seeing_its_neighbours_is_detected(tiny, monkeypatch):
    """Negative control: a mask that lets rows attend to every cache position must change the tokens."""
    audios = six_clips()
    monkeypatch.setattr(refill_engine, "slot_attention_mask",
                        lambda mask, implementation, dtype: (mask | True)[:, None, None, :])
    engine = generate_batch(tiny, audios, Prompt(), GREEDY, decoder=refill(tiny), slots=2)
    assert [r.token_ids for r in engine] != [r.token_ids for r in alone(tiny, audios, Prompt(), GREEDY)]


def test_cache_is_reused_for_one_shape_and_released(tiny):
    decoder = RefillDecoder(tiny.model.thinker, RefillOptions(length_quantum=256))
    rows = generation.prepare_rows(tiny, clips()[:3], Prompt())
    decoder.decode_rows(rows, DecodingOptions(max_new_tokens=2), eos_ids=[], pad_id=0, slots=2)
    first = decoder._caches[(2, 256)]
    decoder.decode_rows(rows, DecodingOptions(max_new_tokens=3), eos_ids=[], pad_id=0, slots=2)
    assert decoder._caches[(2, 256)] is first and decoder.cache_shapes == [(2, 256)]
    decoder.decode_rows(rows, DecodingOptions(max_new_tokens=3), eos_ids=[], pad_id=0, slots=3)
    assert decoder.cache_shapes == [(3, 256)]  # a larger shape: new storage, and no cache views the old one
    decoder.decode_rows(rows, DecodingOptions(max_new_tokens=3), eos_ids=[], pad_id=0, slots=2)
    assert decoder.cache_shapes == [(3, 256), (2, 256)]  # a smaller one views the same storage
    assert (decoder._caches[(2, 256)].layers[0].keys.data_ptr()
            == decoder._caches[(3, 256)].layers[0].keys.data_ptr())
    decoder.release()
    assert decoder.cache_shapes == [] and decoder._storage is None


def test_fixed_slots_keep_their_shape_for_fewer_rows(tiny):
    """Three rows through four fixed slots: the empty slot steps too, its garbage reaches no row, and sampling
    (which fails on a NaN probability anywhere in the batch) runs."""
    audios = six_clips()[:3]
    decoder = refill(tiny, fixed_slots=True)
    run = decoder.decode_rows(generation.prepare_rows(tiny, audios, Prompt()), GREEDY, [], 0, slots=4)
    assert run.slots == 4 and decoder.cache_shapes[0][0] == 4 and [len(t) for t in run.tokens] == [12] * 3
    assert_same(alone(tiny, audios, Prompt(), GREEDY), generate_batch(tiny, audios, Prompt(), GREEDY,
                                                                      decoder=decoder, slots=4))
    sampled = generate_batch(tiny, audios, Prompt(), DecodingOptions(max_new_tokens=12, do_sample=True),
                             decoder=decoder, slots=4)
    assert all(r.token_ids for r in sampled)
    assert refill(tiny).decode_rows(generation.prepare_rows(tiny, audios, Prompt()), GREEDY, [], 0,
                                    slots=4).slots == 3  # uncompiled by default: only the rows there are


def test_compiled_step_is_one_graph_with_the_same_tokens(tiny, monkeypatch):
    """What CUDA graphs need, checked on the CPU: the decode step traces whole (no graph break), the
    per-row cache writes included, never copies the cache per query head, and its tokens equal generate's."""
    import torch._dynamo
    from torch._dynamo.utils import counters
    from transformers.integrations import sdpa_attention

    reference = alone(tiny, six_clips()[:4], Prompt(), GREEDY)

    real_repeat = sdpa_attention.repeat_kv
    copies = []

    def spy(states, groups):  # eager prompts may repeat; a compiled step must not
        copies.append(torch.compiler.is_compiling())
        return real_repeat(states, groups)

    monkeypatch.setattr(sdpa_attention, "repeat_kv", spy)

    torch._dynamo.reset()
    counters.clear()
    audios = six_clips()[:4]
    decoder = RefillDecoder(tiny.model.thinker, RefillOptions(length_quantum=64, compile=True, min_cache_len=192))
    engine = generate_batch(tiny, audios, Prompt(), GREEDY, decoder=decoder, slots=2)
    assert_same(reference, engine)
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"]
    last = generate_batch(tiny, audios[:1], Prompt(), GREEDY, decoder=decoder, slots=2)  # a group's last call
    assert_same(reference[:1], last)
    assert counters["stats"]["unique_graphs"] == 1 and decoder.cache_shapes == [(2, 192)]  # its shape: no new graph
    assert False in copies and True not in copies  # prompts repeated (eager), no compiled step did


def test_a_stage_bound_gives_every_call_one_cache_shape(tiny):
    rows = generation.prepare_rows(tiny, clips(), Prompt())
    bounded = RefillDecoder(tiny.model.thinker, RefillOptions(length_quantum=64, min_cache_len=300))
    assert {bounded.cache_len_for(rows[:n], [4] * n) for n in (1, 4)} == {320}
    assert refill(tiny).cache_len_for(rows[:1], [4]) < 320
    assert bounded.cache_len_for(rows, [400] * 4) > 320  # a bound is a floor, never a cut


def short_slots(tiny, slot_cache_len, **options):
    return RefillDecoder(tiny.model.thinker, RefillOptions(length_quantum=1, slot_cache_len=slot_cache_len, **options))


@pytest.mark.parametrize("slot_cache_len, slots", [(60, 3), (70, 6), (64, 8)])
def test_rows_that_outgrow_their_slot_go_on_with_the_same_tokens(tiny, slot_cache_len, slots):
    """Slots shorter than prompt + cap (prompts of 27..108 tokens): rows that fill theirs go on in a full-length
    cache through fewer slots, the rows too long for a slot go there first; every row as if alone."""
    decoding = DecodingOptions(max_new_tokens=30, repetition_penalty=1.3)
    audios = six_clips()
    rows = generation.prepare_rows(tiny, audios, Prompt())
    decoder = short_slots(tiny, slot_cache_len)
    run = decoder.decode_rows(rows, decoding, generation.end_of_turn_ids(tiny), 0, slots)
    full_len = decoder.cache_len_for(rows, [30] * len(rows))
    assert run.cache_len == slot_cache_len < full_len == run.long_cache_len
    first = min(slots, len(rows))  # uncompiled: no more slots than rows
    assert run.continued > 0 and 1 <= run.long_slots <= max(1, first * slot_cache_len // full_len)  # same memory
    assert decoder.cache_shapes == [(first, slot_cache_len), (run.long_slots, full_len)]  # one full-length round
    assert_same(alone(tiny, audios, Prompt(), decoding),
                generate_batch(tiny, audios, Prompt(), decoding, decoder=decoder, slots=slots))


def test_a_group_prefills_continued_and_fresh_rows_together(tiny, monkeypatch):
    """A prompt too long for a slot and rows that outgrew theirs share a prefill in the full-length round
    (a stage bound gives that round room beyond the longest prompt + cap)."""
    groups = []
    real_feed = RefillDecoder._feed_prefixes

    def spy(self, prefilled, prefixes, *args):
        groups.append([p is not None for p in prefixes])
        return real_feed(self, prefilled, prefixes, *args)

    monkeypatch.setattr(RefillDecoder, "_feed_prefixes", spy)
    audios = six_clips()
    engine = generate_batch(tiny, audios, Prompt(), GREEDY_30, decoder=short_slots(tiny, 70, min_cache_len=170),
                            slots=6)
    assert any(False in g and True in g for g in groups)
    assert_same(alone(tiny, audios, Prompt(), GREEDY_30), engine)


def test_continuing_from_the_prompt_alone_is_detected(tiny, monkeypatch):
    """Negative control: a continued row that is not fed what it made before its slot filled goes elsewhere."""
    monkeypatch.setattr(RefillDecoder, "_feed_prefixes",
                        lambda self, prefilled, prefixes, hidden, positions, token_ids, mask: (
                            hidden, positions, token_ids, mask))
    audios = six_clips()
    engine = generate_batch(tiny, audios, Prompt(), GREEDY_30, decoder=short_slots(tiny, 60), slots=3)
    assert [r.token_ids for r in engine] != [r.token_ids for r in alone(tiny, audios, Prompt(), GREEDY_30)]


def test_prompts_longer_than_every_slot_go_straight_to_the_full_length_round(tiny):
    rows = generation.prepare_rows(tiny, clips()[1:2] + clips()[3:4], Prompt())  # prompts of 62 and 108 tokens
    decoder = short_slots(tiny, 48)
    run = decoder.decode_rows(rows, GREEDY, [], 0, slots=4)
    assert run.continued == 0 and run.long_slots == 1 and decoder.cache_shapes == [(1, 120)]
    assert [len(t) for t in run.tokens] == [12, 12]
    assert_same(alone(tiny, clips()[1:2] + clips()[3:4], Prompt(), GREEDY),
                generate_batch(tiny, clips()[1:2] + clips()[3:4], Prompt(), GREEDY, decoder=decoder, slots=4))


def test_compiled_slots_and_full_length_round_are_two_graphs(tiny):
    """Compiled (CPU): the slots' shape and the full-length round's shape are one graph each, traced whole,
    and a second call with rows that outgrow their slots again records nothing new; same tokens."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    audios = six_clips()[:4]
    reference = alone(tiny, audios, Prompt(), GREEDY_30)
    torch._dynamo.reset()
    counters.clear()
    decoder = RefillDecoder(tiny.model.thinker, RefillOptions(length_quantum=1, compile=True, min_cache_len=140,
                                                              slot_cache_len=72))
    for _ in range(2):
        assert_same(reference, generate_batch(tiny, audios, Prompt(), GREEDY_30, decoder=decoder, slots=4))
    assert decoder.cache_shapes == [(4, 72), (2, 140)]  # fixed slots, compiled: the same shapes every call
    assert counters["stats"]["unique_graphs"] == 2 and not counters["graph_break"]


def test_prefill_chunks_of_continued_rows_stay_within_the_chunks_positions(tiny, monkeypatch):
    """`prefill_rows` is sized for the longest prompt (108 tokens here); rows that come back with the tokens
    they made are longer, so fewer of them are prefilled at once."""
    loaded = []
    real_refill = RefillDecoder._refill

    def spy(self, state, cache, slot_ids, group, rows, prefixes, *args):
        loaded.append(len(group) * (max(rows[i]["input_ids"].shape[1] for i in group)
                                    + max((len(prefixes[i][0]) for i in group if i in prefixes), default=0)))
        return real_refill(self, state, cache, slot_ids, group, rows, prefixes, *args)

    monkeypatch.setattr(RefillDecoder, "_refill", spy)
    audios = six_clips()
    engine = generate_batch(tiny, audios, Prompt(), GREEDY_30, slots=6,
                            decoder=short_slots(tiny, 70, min_cache_len=170, prefill_rows=2))
    assert max(loaded) <= 2 * 108 and len(loaded) > 3
    assert_same(alone(tiny, audios, Prompt(), GREEDY_30), engine)


def test_looping_rows_stop_early_with_plain_generates_tokens(tiny):
    """With a loop stop, rows that loop end at a host sync after their loop is caught and free their slots;
    every row's tokens (cut where its loop began) equal plain `generate` alone, which checks every step."""
    from tests.model.test_loop_stop import STOPPED_120, TINY_LOOPS

    audios = six_clips()
    plain = alone(tiny, audios, Prompt(), STOPPED_120)
    looping = {i for i, r in enumerate(plain) if r.loop_stopped}
    assert looping and len(looping) < len(audios)  # some rows loop, some run to the cap
    rows = generation.prepare_rows(tiny, audios, Prompt())
    eos = generation.end_of_turn_ids(tiny)
    free = refill(tiny).decode_rows(rows, DecodingOptions(max_new_tokens=120), eos, 0, slots=2)
    run = refill(tiny).decode_rows(rows, STOPPED_120, eos, 0, slots=2)
    # Caught at a sync (every 8 steps) where the loop still goes on; tiny-random's loops may break before one
    # (or the cap comes first), and those rows are cut afterwards all the same.
    assert run.loop_stopped and run.loop_stopped <= looping and run.steps < free.steps
    for i in run.loop_stopped:
        assert plain[i].num_tokens <= len(run.tokens[i]) < 120
    engine = generate_batch(tiny, audios, Prompt(), STOPPED_120, decoder=refill(tiny), slots=2)
    assert_same(plain, engine)
    assert [r.loop_stopped for r in engine] == [r.loop_stopped for r in plain]
    assert TINY_LOOPS.min_tokens < min(plain[i].num_tokens for i in looping)  # the stop had tokens to look at


def test_a_row_stopped_for_looping_does_not_go_on_in_a_full_length_round(tiny):
    """Its slot has room left, so without the loop it would have counted as outgrowing its slot."""
    from tests.model.test_loop_stop import STOPPED_120

    audios = six_clips()
    plain = alone(tiny, audios, Prompt(), STOPPED_120)
    looper = min(range(len(audios)), key=lambda i: (not plain[i].loop_stopped, plain[i].num_tokens))
    rows = generation.prepare_rows(tiny, [audios[looper]], Prompt())
    prompt_len = rows[0]["input_ids"].shape[1]
    decoder = short_slots(tiny, prompt_len + plain[looper].num_tokens + 16)  # room past the sync that stops it
    run = decoder.decode_rows(rows, STOPPED_120, generation.end_of_turn_ids(tiny), 0, slots=1)
    assert run.loop_stopped == {0} and run.continued == 0 and run.long_slots == 0
