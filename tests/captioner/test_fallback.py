"""The temperature fallback ladder and the guarded task, driven by the mock backend."""

import numpy as np
import pytest

from omni_caption.captioner import TaskConfig
from omni_caption.captioner.fallback import (Attempt, FallbackLadder, Verdict, best_attempt,
                                             generate_with_fallback)
from omni_caption.captioner.guarded import model_generate_fn, repetition_judge, run_guarded_task
from omni_caption.captioner.guards import SegmentContext
from omni_caption.captioner.mock_backend import MockBackend, MockQueueEmpty, is_mock_result
from omni_caption.model import AutWindows, DecodingOptions, GenerationResult

LOOP = "Thank you. " * 20
GOOD = "We will leave at dawn tomorrow, so please bring the maps."
TRANSCRIPT = TaskConfig("transcript", "instruct", language="English", max_new_tokens=1024)
CAPTION = TaskConfig("caption", "captioner", max_new_tokens=2048)


def judge(task=TRANSCRIPT):
    return repetition_judge(task)


def test_mock_hands_out_queued_results_and_records_calls():
    mock = MockBackend().enqueue("one").enqueue("two", hit_token_cap=True, num_tokens=7, mean_logprob=-2.0)
    greedy = DecodingOptions(max_new_tokens=9)
    results = mock(greedy, [4, 5])
    assert [r.text for r in results] == ["one", "two"]
    assert results[1].hit_token_cap and results[1].num_tokens == 7 and results[1].mean_logprob == -2.0
    assert all(is_mock_result(r) for r in results)
    assert not is_mock_result(GenerationResult("x", (), 0, False, None))
    assert mock.calls[0].decoding is greedy and mock.calls[0].indices == (4, 5) and mock.pending == 0
    with pytest.raises(MockQueueEmpty):
        mock(greedy, [0])


def test_greedy_task_retries_only_failing_segments_at_the_next_temperature():
    mock = MockBackend()
    for text in (LOOP, GOOD, LOOP, GOOD):
        mock.enqueue(text)
    mock.enqueue(GOOD + " (retry 0)").enqueue(GOOD + " (retry 2)")
    outcomes = generate_with_fallback(mock, TRANSCRIPT.decoding(), 4, judge())
    assert [c.indices for c in mock.calls] == [(0, 1, 2, 3), (0, 2)]
    assert [c.temperature for c in mock.calls] == [0.0, 0.2]
    retry = mock.calls[1].decoding
    # Greedy becomes plain sampling (no nucleus), with a fresh seed and the same cap.
    assert (retry.do_sample, retry.top_p, retry.top_k, retry.max_new_tokens) == (True, 1.0, 0, 1024)
    assert retry.seed != TRANSCRIPT.decoding().seed
    assert [o.result.text for o in outcomes] == [GOOD + " (retry 0)", GOOD, GOOD + " (retry 2)", GOOD]
    assert [o.fell_back for o in outcomes] == [True, False, True, False]
    assert [len(o.attempts) for o in outcomes] == [2, 1, 2, 1]


def test_sampling_task_keeps_its_nucleus_on_retry():
    mock = MockBackend().enqueue(LOOP).enqueue(GOOD)
    generate_with_fallback(mock, CAPTION.decoding(), 1, judge(CAPTION))
    first, retry = (c.decoding for c in mock.calls)
    assert (first.temperature, retry.temperature) == (0.6, 0.8)
    assert (retry.top_p, retry.top_k) == (0.95, 20)


def test_one_retry_by_default_even_if_it_loops_again():
    mock = MockBackend().enqueue(LOOP).enqueue(LOOP)
    generate_with_fallback(mock, TRANSCRIPT.decoding(), 1, judge())
    assert [c.temperature for c in mock.calls] == [0.0, 0.2]


def test_ladder_order_and_temperature_cap():
    mock = MockBackend()
    for _ in range(4):
        mock.enqueue(LOOP)
    ladder = FallbackLadder(max_retries=5)
    generate_with_fallback(mock, CAPTION.decoding(), 1, judge(CAPTION), ladder)
    # 0.6 -> 0.8 -> 1.0, then the cap: no call at 1.2, and 1.0 is not repeated.
    assert [c.temperature for c in mock.calls] == [0.6, 0.8, 1.0]
    assert mock.pending == 1


def test_longer_ladder_climbs_in_order_and_stops_when_all_pass():
    mock = MockBackend()
    for text in (LOOP, LOOP, GOOD, LOOP, GOOD):
        mock.enqueue(text)
    outcomes = generate_with_fallback(mock, TRANSCRIPT.decoding(), 2, judge(), FallbackLadder(max_retries=3))
    # Both loop at 0.0; at 0.2 segment 0 passes and segment 1 loops; at 0.4 only segment 1 is asked
    # again, passes, and the third retry allowed (0.6) is never made.
    assert [(c.temperature, c.indices) for c in mock.calls] == [(0.0, (0, 1)), (0.2, (0, 1)), (0.4, (1,))]
    assert [o.kept.temperature for o in outcomes] == [0.2, 0.4]


def test_no_retry_at_the_cap_or_with_zero_retries():
    at_cap = DecodingOptions(do_sample=True, temperature=1.0)
    mock = MockBackend().enqueue(LOOP)
    assert generate_with_fallback(mock, at_cap, 1, judge())[0].result.text == LOOP
    assert len(mock.calls) == 1
    mock = MockBackend().enqueue(LOOP)
    generate_with_fallback(mock, TRANSCRIPT.decoding(), 1, judge(), FallbackLadder(max_retries=0))
    assert len(mock.calls) == 1


def test_when_every_attempt_loops_the_least_repetitive_is_kept():
    worse, better = "la " * 60, "Thank you so much. " * 5
    mock = MockBackend().enqueue(better).enqueue(worse)
    outcome = generate_with_fallback(mock, TRANSCRIPT.decoding(), 1, judge())[0]
    assert all(a.verdict.failed for a in outcome.attempts)
    assert outcome.result.text == better and not outcome.fell_back


def result(text="x", logprob=None):
    return GenerationResult(text, (), 1, False, logprob)


def test_best_attempt_ranking():
    greedy, hot = DecodingOptions(), DecodingOptions(do_sample=True, temperature=0.2)
    # Passing beats failing, whatever the ratio.
    assert best_attempt([Attempt(result(), greedy, Verdict(True, 2.5)),
                         Attempt(result(), hot, Verdict(False, 2.3))]) == 1
    # Equal ratios: the higher mean log-prob; a missing log-prob ranks last.
    assert best_attempt([Attempt(result(logprob=-1.5), greedy, Verdict(True, 3.0)),
                         Attempt(result(logprob=-0.5), hot, Verdict(True, 3.0))]) == 1
    assert best_attempt([Attempt(result(logprob=None), greedy, Verdict(True, 3.0)),
                         Attempt(result(logprob=-9.0), hot, Verdict(True, 3.0))]) == 1
    # All equal: the earlier (colder) attempt.
    assert best_attempt([Attempt(result(logprob=-1.0), greedy, Verdict(True, 3.0)),
                         Attempt(result(logprob=-1.0), hot, Verdict(True, 3.0))]) == 0


def test_wrong_result_count_is_an_error():
    with pytest.raises(ValueError, match="2 results for 1"):
        generate_with_fallback(lambda decoding, idx: [result(), result()], DecodingOptions(), 1, judge())


def test_run_guarded_task_batch():
    mock = MockBackend()
    mock.enqueue(LOOP, num_tokens=1024, hit_token_cap=True)  # 0: loops until the cap
    mock.enqueue(GOOD, mean_logprob=-0.3)  # 1: fine
    mock.enqueue("Thank you for watching.")  # 2: words where the VAD heard none
    mock.enqueue(GOOD + " Again.", mean_logprob=-0.4)  # 0, retried at 0.2
    contexts = [SegmentContext(6.0, 0.9), SegmentContext(4.0, 0.9), SegmentContext(30.0, 0.0)]
    outputs = run_guarded_task(mock, TRANSCRIPT, contexts)
    assert [c.indices for c in mock.calls] == [(0, 1, 2), (0,)]

    retried, fine, silent = outputs
    assert retried.columns["transcript"] == GOOD + " Again."
    assert retried.flags == ["fallback:transcript"]  # the loop and its truncation were left behind
    assert retried.scores["transcript_temperature"] == 0.2 and retried.scores["transcript_avg_logprob"] == -0.4

    assert fine.flags == [] and fine.raw == {} and fine.columns["transcript"] == GOOD
    assert fine.scores["transcript_temperature"] == 0.0 and 0 < fine.scores["chars_per_s"] < 30
    assert fine.scores["compression_ratio"] < 2.4

    assert silent.flags == ["speech_in_silence:transcript"]
    assert silent.columns["transcript"] == "" and silent.raw == {"transcript": "Thank you for watching."}


def test_run_guarded_task_keeps_flags_of_a_loop_it_could_not_fix():
    mock = MockBackend().enqueue(LOOP, num_tokens=1024, hit_token_cap=True).enqueue(LOOP + "Thank", num_tokens=1024,
                                                                                    hit_token_cap=True)
    [out] = run_guarded_task(mock, TRANSCRIPT, [SegmentContext(30.0, 0.9)])
    assert out.flags == ["truncated:transcript", "repetition:transcript"]
    assert out.columns["transcript"] == LOOP  # the first attempt: same verdict, same figures, colder


def test_run_guarded_task_uses_the_detected_language_for_rates():
    task = TaskConfig("transcript", "instruct")  # no --language: the model names it
    text = "我们明天一早出发请把地图带上" * 2  # 28 characters in 2 s: fine in English, too fast for Chinese
    mock = MockBackend().enqueue(f"Language: Chinese\n{text}")
    [out] = run_guarded_task(mock, task, [SegmentContext(2.0, 1.0)])
    assert out.columns == {"transcript": text, "language": "Chinese"}
    assert out.flags == ["rate:transcript"] and out.scores["chars_per_s"] == 14.0


class FakeTokeniser:
    """Stands in for prepare_rows: a row names its clip, and each call's clips are kept."""

    def __init__(self):
        self.calls: list[list[int]] = []

    def __call__(self, omni, audios, prompt):
        self.calls.append([int(a[0]) for a in audios])
        return [{"clip": int(a[0])} for a in audios]


def test_model_generate_fn_retries_only_the_subset(monkeypatch):
    seen = []

    def fake_generate_rows(omni, rows, decoding, windows, decoder=None, slots=None):
        seen.append(([r["clip"] for r in rows], windows))
        return [result() for _ in rows]

    monkeypatch.setattr("omni_caption.captioner.guarded.generate_rows", fake_generate_rows)
    tokeniser = FakeTokeniser()
    monkeypatch.setattr("omni_caption.captioner.guarded.prepare_rows", tokeniser)
    audios = [np.full(4, i, dtype=np.float32) for i in range(3)]
    windows = AutWindows(per_clip=((1,), (2,), (3,)))
    generate = model_generate_fn(omni=None, prompt=None, audios=audios, windows=windows)
    generate(DecodingOptions(), [2, 0])
    assert seen == [([2, 0], AutWindows(per_clip=((3,), (1,))))]
    generate(DecodingOptions(temperature=0.5), [0, 1])  # a retry tokenises only the clip not seen yet
    assert seen[-1] == ([0, 1], AutWindows(per_clip=((1,), (2,)))) and tokeniser.calls == [[2, 0], [1]]
    fixed = AutWindows(seconds=4)
    model_generate_fn(None, None, audios, fixed)(DecodingOptions(), [1])
    assert seen[-1] == ([1], fixed)


def test_model_generate_fn_uses_rows_prepared_ahead_without_the_audio(monkeypatch):
    seen = []
    monkeypatch.setattr("omni_caption.captioner.guarded.generate_rows",
                        lambda omni, rows, *args, **kwargs: seen.append(rows) or [result() for _ in rows])
    tokeniser = FakeTokeniser()
    monkeypatch.setattr("omni_caption.captioner.guarded.prepare_rows", tokeniser)
    ahead = [{"clip": 10}, {"clip": 11}, {"clip": 12}]
    model_generate_fn(None, None, None, rows=ahead)(DecodingOptions(), [2, 1])
    assert seen == [[{"clip": 12}, {"clip": 11}]] and tokeniser.calls == []


def test_model_generate_fn_halves_a_batch_that_runs_out_of_memory(monkeypatch):
    """An injected CUDA OOM above 2 segments: every segment is decoded once, in order, with its own windows."""
    import torch

    from omni_caption.model.batch_sizing import BatchLimit
    from omni_caption.model.decode_runtime import DecodeRuntime

    calls = []

    def fake_generate_rows(omni, rows, decoding, windows, decoder=None, slots=None):
        calls.append([r["clip"] for r in rows])
        if len(rows) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        assert windows.per_clip == tuple((r["clip"] + 1,) for r in rows)
        return [result(f"clip {r['clip']}") for r in rows]

    monkeypatch.setattr("omni_caption.captioner.guarded.generate_rows", fake_generate_rows)
    tokeniser = FakeTokeniser()
    monkeypatch.setattr("omni_caption.captioner.guarded.prepare_rows", tokeniser)
    audios = [np.full(4, i, dtype=np.float32) for i in range(7)]
    windows = AutWindows(per_clip=tuple((i + 1,) for i in range(7)))
    freed = []
    runtime = DecodeRuntime(decoder=None, limit=BatchLimit(8))
    monkeypatch.setattr(runtime, "free_after_oom", lambda: freed.append(True))
    generate = model_generate_fn(None, None, audios, windows, runtime=runtime)
    texts = [r.text for r in generate(DecodingOptions(), [6, 5, 4, 3, 2, 1, 0])]
    assert texts == [f"clip {i}" for i in (6, 5, 4, 3, 2, 1, 0)]
    assert sorted(i for c in calls if len(c) <= 2 for i in c) == list(range(7))  # each segment decoded once
    assert runtime.limit.size == 2 and len(freed) == 3  # 7 -> 4 + 3 -> 2 + 2 + 2 + 1
    assert tokeniser.calls == [[6, 5, 4, 3, 2, 1, 0]]  # the halves reuse the rows: features are computed once


def test_a_row_stopped_for_looping_is_retried_and_flagged_though_its_text_passes():
    """The kept copies of a stopped loop can be too few for the text guard; the stop itself says it looped."""
    mock = MockBackend().enqueue(GOOD, loop_stopped=True).enqueue(GOOD + " again", loop_stopped=True)
    [out] = run_guarded_task(mock, TRANSCRIPT, [SegmentContext(duration_s=10.0)])
    assert [c.indices for c in mock.calls] == [(0,), (0,)]  # retried at the next temperature
    assert {"repetition:transcript", "loop_stopped:transcript"} <= set(out.flags)
    assert "truncated:transcript" not in out.flags
    mock = MockBackend().enqueue(GOOD, loop_stopped=True).enqueue(GOOD + " again")
    [out] = run_guarded_task(mock, TRANSCRIPT, [SegmentContext(duration_s=10.0)])
    assert out.columns["transcript"] == GOOD + " again" and "fallback:transcript" in out.flags
    assert not any(f.startswith(("repetition", "loop_stopped")) for f in out.flags)
