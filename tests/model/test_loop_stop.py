"""Loop stopping: where a row is cut (pure), the device check that agrees with it, and plain `generate` on tiny-random."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from omni_caption.model import DecodingOptions, Prompt, generate_batch
from omni_caption.model.loop_stop import LoopStop, LoopStopCriteria, first_loop_end, looping_now
from tests.model.test_refill_engine import six_clips

SMALL = LoopStop(max_unit=3, min_repeats=2, min_tokens=4)
TINY_LOOPS = LoopStop(max_unit=8, min_repeats=3, min_tokens=12)  # tiny-random's greedy loops are caught by this
FREE_120 = DecodingOptions(max_new_tokens=120)
STOPPED_120 = DecodingOptions(max_new_tokens=120, loop_stop=TINY_LOOPS)


def test_a_loop_is_cut_where_it_first_covers_its_span():
    stop = LoopStop(max_unit=4, min_repeats=4, min_tokens=8)
    speech = [7, 8, 9, 10, 11]
    unit = [1, 2, 3]  # span max(4 * 3, 8) = 12 tokens: four copies
    ids = speech + unit * 6
    assert first_loop_end(ids, stop) == len(speech) + 12
    assert first_loop_end(speech + unit * 4, stop) == len(speech) + 12
    assert first_loop_end(speech + unit * 4 + [3], stop) == len(speech) + 12
    assert first_loop_end(speech + unit * 3 + [1, 2], stop) is None  # 11 tokens: one short
    assert first_loop_end([5] * 7, stop) is None and first_loop_end([5] * 8, stop) == 8  # min_tokens for unit 1
    assert first_loop_end([], stop) is None and first_loop_end([5], stop) is None


def test_the_default_stop_spares_speech_that_repeats_itself():
    no = [4, 11]  # "no,"
    assert first_loop_end([9, 9] + no * 40 + [3, 5], LoopStop()) is None  # 80 tokens of "no, no, ..."
    assert first_loop_end([9, 9] + no * 64, LoopStop()) == 2 + 128
    sentence = list(range(100, 130))  # a 30-token sentence, looping: caught after 128 tokens = 4.3 copies
    assert first_loop_end(sentence * 6, LoopStop()) == 128
    with pytest.raises(ValueError):
        LoopStop(min_repeats=1)


def loops_at_each_length(ids: list[int], stop: LoopStop) -> list[bool]:
    """`looping_now` for every prefix of `ids`, as one batch of rows padded with noise past their counts."""
    n = len(ids)
    tokens = torch.tensor([ids] * n)
    tokens[torch.arange(n)[:, None] < torch.arange(n)[None, :]] = 99  # past a row's count: not its tokens
    counts = torch.arange(1, n + 1)
    return looping_now(tokens, counts, stop).tolist()


def tail_loops(ids: list[int], stop: LoopStop) -> bool:
    """The definition, spelled out: some unit's last `span` tokens each equal the one a unit before."""
    t = len(ids)
    return any(t >= stop.span(u) and all(ids[k] == ids[k - u] for k in range(t - stop.span(u) + u, t))
               for u in range(1, stop.max_unit + 1))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2), min_size=1, max_size=24),
       st.sampled_from([SMALL, LoopStop(max_unit=2, min_repeats=3, min_tokens=2), LoopStop(5, 2.5, 6)]))
def test_the_device_check_and_the_cut_follow_the_definition(ids, stop):
    expected = [tail_loops(ids[:t], stop) for t in range(1, len(ids) + 1)]
    assert loops_at_each_length(ids, stop) == expected
    assert first_loop_end(ids, stop) == next((t for t, loops in enumerate(expected, 1) if loops), None)


def test_stopping_criterion_checks_only_the_generated_tokens():
    criterion = LoopStopCriteria(prompt_len=4, stop=SMALL)
    looping_prompt = torch.tensor([[1, 1, 1, 1, 5, 6, 7], [1, 1, 1, 1, 5, 5, 5]])
    assert criterion(looping_prompt[:, :6], None).tolist() == [False, False]  # 2 generated: under min_tokens
    assert criterion(torch.cat([looping_prompt, torch.tensor([[8], [5]])], dim=1), None).tolist() == [False, True]


@pytest.fixture(scope="module")
def free_and_stopped(tiny):
    audios = six_clips()
    return (generate_batch(tiny, audios, Prompt(), FREE_120), generate_batch(tiny, audios, Prompt(), STOPPED_120))


def test_generate_cuts_looping_rows_and_leaves_the_others(free_and_stopped):
    free, stopped = free_and_stopped
    cuts = [first_loop_end(r.token_ids, TINY_LOOPS) for r in free]
    assert any(c is None for c in cuts) and len({c for c in cuts if c is not None}) >= 2  # the test says something
    for row, cut in zip(stopped, cuts):
        assert row.loop_stopped == (cut is not None)
    for f, s, cut in zip(free, stopped, cuts):
        assert s.token_ids == f.token_ids[:cut]
        assert s.num_tokens == len(s.token_ids)
        assert s.hit_token_cap == (cut is None and f.hit_token_cap)
        if cut is None:
            assert s.text == f.text and s.mean_logprob == pytest.approx(f.mean_logprob, abs=1e-5)


def test_generate_stops_decoding_when_every_row_loops(tiny, free_and_stopped):
    free, _ = free_and_stopped
    cuts = [first_loop_end(r.token_ids, TINY_LOOPS) for r in free]
    looper = min((c, i) for i, c in enumerate(cuts) if c is not None)[1]
    steps = []
    hook = tiny.model.thinker.lm_head.register_forward_hook(lambda *a: steps.append(1))
    try:
        [row] = generate_batch(tiny, [six_clips()[looper]], Prompt(), STOPPED_120)
    finally:
        hook.remove()
    assert row.loop_stopped and row.num_tokens == cuts[looper] < 120
    assert len(steps) == cuts[looper]  # one logits call per token it made, not 120


def test_without_a_loop_stop_loops_run_to_the_cap(free_and_stopped):
    free, _ = free_and_stopped
    assert not any(r.loop_stopped for r in free) and all(r.num_tokens == 120 for r in free)


def test_qwen25_generate_checks_for_loops_too(tiny25, monkeypatch):
    """Qwen2.5-Omni generates through the thinker's own `generate` (its tiny model does not loop): the criterion
    must reach it, every step once there are tokens enough to look at."""
    seen = []
    real = LoopStopCriteria.__call__

    def spy(self, input_ids, scores, **kwargs):
        seen.append(input_ids.shape[1] - self.prompt_len)
        return real(self, input_ids, scores, **kwargs)

    monkeypatch.setattr(LoopStopCriteria, "__call__", spy)
    stop = LoopStop(max_unit=2, min_repeats=2, min_tokens=4)
    generate_batch(tiny25, six_clips()[:2], Prompt(), DecodingOptions(max_new_tokens=10, loop_stop=stop))
    assert seen == list(range(1, 11))
