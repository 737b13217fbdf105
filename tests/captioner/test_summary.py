"""Summary source, its split under a budget, and the map-reduce over a stand-in model call."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omni_caption.captioner.summary import (SUMMARY_PART_TEXT, SUMMARY_REDUCE_TEXT, SUMMARY_TEXT, SegmentText,
                                            SourceLine, build_summary_source, estimate_tokens, format_timestamp,
                                            plan_summary, run_summary_plan, run_summary_plans, source_lines,
                                            split_source, summary_shrinking_on_oom)
from omni_caption.model import GenerationResult


def test_format_timestamp():
    assert format_timestamp(0) == "00:00:00"
    assert format_timestamp(65.9) == "00:01:05"  # down to the second
    assert format_timestamp(3600 * 26 + 61) == "26:01:01"
    assert format_timestamp(-0.2) == "00:00:00"


def test_source_is_ordered_timestamped_and_skips_segments_without_words():
    segments = [
        SegmentText(90.0, 95.5, caption="Applause.\nThen   quiet.", transcript=None),
        SegmentText(65.0, 90.0, caption="A man speaks over rain.", transcript="We leave at dawn.", speaker="S1"),
        SegmentText(95.5, 100.0, caption="", transcript="..."),  # nothing to say
        SegmentText(100.0, 110.0, caption=None, transcript="明天见。"),
    ]
    assert build_summary_source(segments).split("\n") == [
        "[00:01:05–00:01:30] (S1) caption: A man speaks over rain. / transcript: We leave at dawn.",
        "[00:01:30–00:01:35] caption: Applause. Then quiet.",
        "[00:01:40–00:01:50] transcript: 明天见。",
    ]


def test_estimate_tokens_errs_high_and_adds_up():
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcdef") == 2 and estimate_tokens("abcdefg") == 3
    assert estimate_tokens("你好世界") == 4 and estimate_tokens("안녕") == 2
    assert estimate_tokens("ab\ncd") <= estimate_tokens("ab") + 1 + estimate_tokens("cd")


def lines_for(texts):
    return source_lines([SegmentText(10.0 * i, 10.0 * i + 10, transcript=t) for i, t in enumerate(texts)])


def test_split_packs_whole_lines_in_order():
    lines = lines_for([f"sentence number {i} is here" for i in range(10)])
    pieces = split_source(lines, max_tokens=40)
    assert len(pieces) > 1
    assert [line for piece in pieces for line in piece.lines] == lines
    assert all(estimate_tokens(p.text) <= 40 for p in pieces)
    assert pieces[0].start_s == 0.0 and pieces[-1].end_s == 100.0


def test_split_cuts_an_overlong_line_at_spaces_and_repeats_its_tag():
    [line] = lines_for(["word " * 200])
    pieces = split_source([line], max_tokens=60)
    texts = [p.text for p in pieces]
    assert len(texts) > 3
    assert texts[0].startswith("[00:00:00–00:00:10] transcript: word")
    assert all(t.startswith("[00:00:00–00:00:10] (cont.) word") for t in texts[1:])
    assert all(not t.endswith(" wor") and estimate_tokens(t) <= 60 for t in texts)
    assert sum(t.count("word") for t in texts) == 200


def test_split_cuts_cjk_between_characters():
    [line] = lines_for(["我们明天一早出发请把地图带上" * 20])
    pieces = split_source([line], max_tokens=50)
    bodies = [p.text.split("] ", 1)[1].removeprefix("(cont.) ").removeprefix("transcript: ") for p in pieces]
    assert "".join(bodies) == "我们明天一早出发请把地图带上" * 20
    assert all(estimate_tokens(p.text) <= 50 for p in pieces)


def test_split_refuses_a_budget_without_room():
    with pytest.raises(ValueError, match="at least"):
        split_source(lines_for(["hi"]), max_tokens=5)


text_st = st.text(alphabet=st.sampled_from(list("abc xyz 你好世界 ,.")), min_size=1, max_size=300)


@settings(max_examples=80, deadline=None)
@given(st.lists(text_st, min_size=1, max_size=12), st.integers(min_value=32, max_value=200))
def test_split_property_every_piece_fits_and_nothing_is_lost(texts, budget):
    lines = lines_for(texts)
    pieces = split_source(lines, max_tokens=budget)
    assert all(estimate_tokens(p.text) <= budget for p in pieces)

    def letters(s):
        return "".join(c for c in s if c in "abcxyz你好世界")

    # Tags aside, every character of the source is in a piece, in order.
    bodies = "".join(letters(l.text.split("] ", 1)[1].removeprefix("(cont.) ")) for p in pieces for l in p.lines)
    assert bodies == "".join(letters(l.text.split("] ", 1)[1]) for l in lines)


def fake_model(prefix="S"):
    """A stand-in Thinking model: answers each prompt with a numbered summary and records the prompts."""
    prompts_seen = []

    def summarise(prompts):
        prompts_seen.append(list(prompts))
        n = len(prompts_seen)
        return [GenerationResult(f"<think>round {n} item {i}</think>{prefix}{n}.{i}", (), 5, False, -0.1)
                for i in range(len(prompts))]

    return summarise, prompts_seen


def segments(n, words=20):
    return [SegmentText(30.0 * i, 30.0 * i + 30, caption=f"scene {i} " + "detail " * words) for i in range(n)]


def test_short_recording_is_one_call():
    plan = plan_summary(segments(3))
    assert plan.single_call
    summarise, seen = fake_model()
    result = run_summary_plan(plan, summarise)
    assert result.calls_per_round == (1,)
    assert seen[0][0] == SUMMARY_TEXT.format(source=build_summary_source(segments(3)))
    assert (result.summary, result.reasoning, result.flags) == ("S1.0", "round 1 item 0", ())


def test_long_recording_maps_then_reduces_until_one():
    budget = 200
    plan = plan_summary(segments(40), max_tokens=budget)
    assert len(plan.pieces) > 4
    summarise, seen = fake_model(prefix="partial summary text " * 10)
    result = run_summary_plan(plan, summarise, max_tokens=budget)
    assert result.calls_per_round[0] == len(plan.pieces)  # the map step is one batched call
    assert list(result.calls_per_round) == sorted(result.calls_per_round, reverse=True)
    assert result.calls_per_round[-1] == 1 and len(result.calls_per_round) >= 3  # at least two reduce rounds
    first_map = seen[0][0]
    assert first_map.startswith(SUMMARY_PART_TEXT.split("{")[0]) and f"part 1 of {len(plan.pieces)}" in first_map
    reduce_prompt = seen[1][0]
    assert reduce_prompt.startswith(SUMMARY_REDUCE_TEXT.split("{")[0])
    assert reduce_prompt.split("\n\n", 1)[1].startswith("[00:00:00–")  # partials keep their spans
    assert "<think>" not in reduce_prompt  # traces are not passed on
    assert result.reasoning.startswith(f"round {len(seen)}")


def test_reduce_always_shrinks_even_when_partials_exceed_the_budget():
    plan = plan_summary(segments(12), max_tokens=64)
    summarise, _ = fake_model(prefix="a very long partial summary " * 40)  # each partial alone is over 64
    result = run_summary_plan(plan, summarise, max_tokens=64)
    counts = result.calls_per_round
    assert all(b <= (a + 1) // 2 for a, b in zip(counts, counts[1:]))  # at least halved each round
    assert counts[-1] == 1


def test_summary_flags():
    plan = plan_summary(segments(1))

    def unclosed(prompts):
        return [GenerationResult("<think>still thinking", (), 4096, True, -0.1)]

    result = run_summary_plan(plan, unclosed)
    assert result.summary is None and result.reasoning == "still thinking"
    assert result.flags == ("unclosed_think:summary", "truncated:summary", "empty:summary")


def test_a_summary_call_stopped_for_looping_flags_the_summary():
    plan = plan_summary(segments(12), max_tokens=64)  # several calls: one of the first round loops

    def one_loops(prompts):
        return [GenerationResult("<think>ok</think> A meeting.", (), 9, False, -0.1, loop_stopped=i == 1)
                for i, _ in enumerate(prompts)]

    result = run_summary_plan(plan, one_loops, max_tokens=64)
    assert len(result.calls_per_round) > 1
    assert result.flags == ("loop_stopped:summary", "repetition:summary")


def test_nothing_to_summarise_is_no_plan():
    assert plan_summary([SegmentText(0, 5, caption=None, transcript="")]) is None


def test_source_lines_are_plain_data():
    [line] = lines_for(["hello"])
    assert line == SourceLine(0.0, 10.0, "[00:00:00–00:00:10] transcript: hello")


def test_many_recordings_share_each_round_in_one_call():
    short, long = plan_summary(segments(2), max_tokens=200), plan_summary(segments(40), max_tokens=200)
    assert short.single_call and not long.single_call
    summarise, seen = fake_model(prefix="partial summary text " * 10)
    short_result, long_result = run_summary_plans([short, long], summarise, max_tokens=200)
    alone = run_summary_plan(long, fake_model(prefix="partial summary text " * 10)[0], max_tokens=200)
    assert len(seen) == len(long_result.calls_per_round)  # one call per round, not per recording
    assert len(seen[0]) == 1 + len(long.pieces)  # round 1 maps both recordings together
    assert short_result.calls_per_round == (1,) and short_result.summary == "partial summary text " * 10 + "1.0"
    assert long_result.calls_per_round == alone.calls_per_round
    assert run_summary_plans([], summarise) == []


class FakeOutOfMemory(RuntimeError):
    pass


def gpu_that_fits(max_prompt_tokens, prefix="partial"):
    """fake_model behind a memory limit: a call holding any prompt over `max_prompt_tokens` raises, as
    `summarise` does when even one prompt alone does not fit. Returns (summarise, prompts that ran, calls)."""
    model, ran = fake_model(prefix)
    calls = []

    def summarise(prompts):
        calls.append(len(prompts))
        if max(estimate_tokens(p) for p in prompts) > max_prompt_tokens:
            raise FakeOutOfMemory("CUDA out of memory. Tried to allocate 20.00 GiB")
        return model(prompts)

    return summarise, ran, calls


def shrinking(source, summarise, max_tokens=16_000):
    freed = []
    result = summary_shrinking_on_oom(source, summarise, lambda exc: isinstance(exc, FakeOutOfMemory),
                                      lambda: freed.append(1), max_tokens=max_tokens)
    return result, len(freed)


def test_a_source_too_big_for_memory_is_split_until_every_call_fits():
    source = segments(40)
    whole = estimate_tokens(SUMMARY_TEXT.format(source=build_summary_source(source)))
    summarise, ran, calls = gpu_that_fits(whole // 5)
    result, freed = shrinking(source, summarise)
    assert result.summary and result.flags == ()
    assert freed >= 2 and freed == len(calls) - len(ran)  # every failed attempt freed memory before the next
    assert all(estimate_tokens(p) <= whole // 5 for round_ in ran for p in round_)
    mapped = "\n".join(line for p in ran[0] for line in p.splitlines() if line.startswith("[") and "scene" in line)
    assert [f"scene {i} " in mapped for i in range(40)] == [True] * 40  # no segment dropped from the map round
    assert result.calls_per_round[0] == len(ran[0]) > 5 and result.calls_per_round[-1] == 1


def test_a_source_whose_smallest_pieces_do_not_fit_is_a_one_line_error():
    summarise, ran, calls = gpu_that_fits(10)  # not even the prompt template fits
    result, freed = shrinking(segments(6), summarise)
    assert isinstance(result, str) and "\n" not in result
    assert result.startswith("CUDA out of memory summarising even 32-token pieces")
    assert ran == [] and freed == len(calls) and 2 <= len(calls) <= 12  # halving: a few tries, not one per token


def test_other_errors_than_out_of_memory_are_not_retried():
    def broken(prompts):
        raise ValueError("bad prompt")

    with pytest.raises(ValueError, match="bad prompt"):
        shrinking(segments(3), broken)
