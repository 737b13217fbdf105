"""The pipeline with the engines (static, refill): same rows as plain generate, OOM halving end to end."""

import threading

import duckdb
import pytest
import torch

from omni_caption.captioner import TaskConfig
from omni_caption.model.batch_sizing import BatchLimit, MemoryModel, auto_batch_size, round_up, slot_counts
from omni_caption.model.decode_engine import StaticDecoder
from omni_caption.model.decode_runtime import DecodeRuntime, decode_runtime, prompt_tokens_for
from omni_caption.model.refill_engine import RefillDecoder, RefillOptions
from omni_caption.pipelines import RunOptions, run_corpus
from omni_caption.pipelines.stage_runtime import stage_runtime
from tests.conftest import EXAMPLES

COLUMNS = "source_path, segment_index, caption, transcript, scores.caption_avg_logprob, flags"


def run(tmp_path, cache_dir, name, **options):
    out = tmp_path / f"{name}.parquet"
    summary = run_corpus([EXAMPLES / "meetings", EXAMPLES / "field"], out,
                         RunOptions(tasks=("caption", "transcript"), model="tiny-random", greedy=True,
                                    max_new_tokens=6, cache_dir=cache_dir, device="cpu", aut_window="pause",
                                    **options), show_progress=False)
    rows = duckdb.sql(f"SELECT {COLUMNS} FROM '{out}' WHERE status = 'ok' ORDER BY 1, 2").fetchall()
    return summary, rows


def rounded(rows):
    return [(*r[:4], round(r[4], 4), r[5]) for r in rows]


def test_static_decoder_writes_the_rows_plain_generate_writes(tmp_path, cache_dir, tiny_dir):
    _, plain = run(tmp_path, cache_dir, "plain", decoder="plain")
    summary, static = run(tmp_path, cache_dir, "static", decoder="static", batch_size="auto")
    assert summary.ok == 3 and len(static) == summary.segments >= 3
    assert rounded(static) == rounded(plain)


def test_out_of_memory_halves_batches_and_loses_no_segment(tmp_path, cache_dir, tiny_dir, monkeypatch):
    # Every batch fails until it is one segment, so compare with plain generate one segment at a time
    # (batched with a clip longer than 8 s, a short clip decodes differently, with or without the engine).
    _, plain = run(tmp_path, cache_dir, "plain", decoder="plain", batch_size=1)
    real_decode = StaticDecoder.decode
    sizes = []

    def decode_that_fits_one(self, inputs, *args, **kwargs):
        sizes.append(inputs["input_ids"].shape[0])
        if sizes[-1] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_decode(self, inputs, *args, **kwargs)

    monkeypatch.setattr(StaticDecoder, "decode", decode_that_fits_one)
    summary, static = run(tmp_path, cache_dir, "oom", decoder="static", batch_size=4)
    assert summary.errors == 0 and rounded(static) == rounded(plain)
    assert max(sizes) > 1 and sizes.count(1) >= len(plain)  # batches failed, then every segment ran alone


def test_refill_decoder_writes_the_rows_plain_generate_writes_alone(tmp_path, cache_dir, tiny_dir, monkeypatch):
    _, plain = run(tmp_path, cache_dir, "plain", decoder="plain", batch_size=1)
    queues = []
    real = RefillDecoder.decode_rows

    def spy(self, rows, decoding, eos_ids, pad_id, slots, **kwargs):
        queues.append((len(rows), slots))
        return real(self, rows, decoding, eos_ids, pad_id, slots, **kwargs)

    monkeypatch.setattr(RefillDecoder, "decode_rows", spy)
    summary, refill = run(tmp_path, cache_dir, "refill", decoder="refill", batch_size=2)
    assert summary.ok == 3 and len(refill) == summary.segments >= 3
    assert rounded(refill) == rounded(plain)
    assert any(rows > slots == 2 for rows, slots in queues)  # a queue longer than the slots, refilled


def test_out_of_memory_in_refill_lowers_the_slots_and_loses_no_segment(tmp_path, cache_dir, tiny_dir, monkeypatch):
    _, plain = run(tmp_path, cache_dir, "plain", decoder="plain", batch_size=1)
    real = RefillDecoder.decode_rows
    slots_tried = []

    def fits_one_slot(self, rows, decoding, eos_ids, pad_id, slots, **kwargs):
        slots_tried.append(min(slots, len(rows)))
        if slots_tried[-1] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(self, rows, decoding, eos_ids, pad_id, slots, **kwargs)

    monkeypatch.setattr(RefillDecoder, "decode_rows", fits_one_slot)
    summary, refill = run(tmp_path, cache_dir, "oom", decoder="refill", batch_size=4)
    assert summary.errors == 0 and rounded(refill) == rounded(plain)
    assert slots_tried[0] > 1 and slots_tried[-1] == 1


def test_the_next_batch_is_tokenised_while_the_model_decodes_this_one(tmp_path, cache_dir, tiny_dir, monkeypatch):
    from omni_caption.captioner import guarded
    from omni_caption.pipelines import stages

    _, alone = run(tmp_path, cache_dir, "alone", decoder="plain", batch_size=1)
    real_prepare, real_generate = stages.prepare_rows, guarded.generate_rows
    threads, next_batch_ready, waited = [], threading.Event(), []

    def prepare(omni, audios, prompt):
        threads.append(threading.current_thread().name)
        rows = real_prepare(omni, audios, prompt)
        if len(threads) == 3:  # two tasks per batch: the third call is the second batch's first task
            next_batch_ready.set()
        return rows

    def generate(omni, rows, *args, **kwargs):
        if not waited:  # the first batch's decode holds on until the second batch is tokenised beside it
            waited.append(next_batch_ready.wait(timeout=60))
        return real_generate(omni, rows, *args, **kwargs)

    monkeypatch.setattr(stages, "prepare_rows", prepare)
    monkeypatch.setattr(guarded, "generate_rows", generate)
    summary, ahead = run(tmp_path, cache_dir, "ahead", decoder="plain", batch_size=1)
    assert waited == [True] and rounded(ahead) == rounded(alone)
    assert len(threads) == 2 * summary.segments  # each batch tokenised once per task, none twice
    # The group's first batch was tokenised with its segmentation, the others while the model decoded.
    assert [name.split("_")[0] for name in threads] == ["segmenter"] * 2 + ["tokeniser"] * (len(threads) - 2)


def test_a_groups_first_batch_is_tokenised_while_the_model_runs_the_group_before(tmp_path, cache_dir, tiny_dir,
                                                                                  monkeypatch):
    from omni_caption.captioner import guarded
    from omni_caption.pipelines import stages

    _, alone = run(tmp_path, cache_dir, "alone", decoder="plain", batch_size=1)
    real_prepare, real_generate = stages.prepare_rows, guarded.generate_rows
    events = []

    def prepare(omni, audios, prompt):
        events.append(("tokenise", threading.current_thread().name.split("_")[0]))
        return real_prepare(omni, audios, prompt)

    def generate(omni, rows, *args, **kwargs):
        events.append(("decode", threading.current_thread().name.split("_")[0]))
        return real_generate(omni, rows, *args, **kwargs)

    monkeypatch.setattr(stages, "prepare_rows", prepare)
    monkeypatch.setattr(guarded, "generate_rows", generate)
    summary, ahead = run(tmp_path, cache_dir, "ahead", decoder="plain", batch_size=1, group_recordings=1)
    assert rounded(ahead) == rounded(alone) and summary.ok == 3
    from_segmenter = [e for e in events if e == ("tokenise", "segmenter")]
    assert len(from_segmenter) == 2 * 3  # each group's first batch, both tasks
    assert sum(1 for e in events if e[0] == "tokenise") == 2 * summary.segments
    # The second and third groups' first batches were ready before the model was done with the group before.
    first_decode_of_group = [i for i, e in enumerate(events) if e == ("decode", "MainThread")]
    assert events.index(("tokenise", "segmenter"), 2) < first_decode_of_group[-1]


def test_a_first_batch_tokenised_for_other_batches_is_not_used(tmp_path, cache_dir, tiny_dir, monkeypatch):
    """An OOM between the prefetch and the run lowers the batch size, so the batches no longer start with the
    prefetched one: it is tokenised again, not used (here the prefetched batch is empty and names no segment)."""
    from dataclasses import replace

    from omni_caption.pipelines import stages

    _, alone = run(tmp_path, cache_dir, "alone", decoder="plain", batch_size=1)
    real_prefetch = stages.ModelStage.prefetch
    stale = []

    def prefetch(self, loaded, work):
        work = real_prefetch(self, loaded, work)
        stale.append(work.first_batch)
        return replace(work, first_batch=stages._TokenisedBatch(batch=[-1]))

    monkeypatch.setattr(stages.ModelStage, "prefetch", prefetch)
    summary, rows = run(tmp_path, cache_dir, "stale", decoder="plain", batch_size=1)
    assert stale and len(stale[0].batch) == 1 and rounded(rows) == rounded(alone) and summary.ok == 3


def summaries(tmp_path, cache_dir, name, max_new_tokens=6, **options):
    """Captions and text summaries of the three example recordings: (run summary, (path, summary, error) each)."""
    out = tmp_path / f"{name}.parquet"
    summary = run_corpus([EXAMPLES / "meetings", EXAMPLES / "field"], out,
                         RunOptions(tasks=("caption", "summary"), model="tiny-random", greedy=True,
                                    max_new_tokens=max_new_tokens, cache_dir=cache_dir, device="cpu", **options),
                         show_progress=False)
    return summary, duckdb.sql(f"SELECT DISTINCT source_path, summary, error FROM '{out}' ORDER BY 1").fetchall()


def tight_summary_memory(monkeypatch, fits):
    """generate_text on a GPU where a call whose prompt texts `fits(texts)` refuses runs out of memory;
    returns the prompt texts of every call and of the calls that ran."""
    from omni_caption.pipelines import summarise

    real = summarise.generate_text
    calls, ran = [], []

    def generate_text(omni, prompts, *args, **kwargs):
        calls.append([p.text for p in prompts])
        if not fits(calls[-1]):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        ran.append(calls[-1])
        return real(omni, prompts, *args, **kwargs)

    monkeypatch.setattr(summarise, "generate_text", generate_text)
    return calls, ran


def test_out_of_memory_in_summaries_halves_them_and_loses_none(tmp_path, cache_dir, tiny_dir, monkeypatch):
    _, alone = summaries(tmp_path, cache_dir, "alone", batch_size=1)
    calls, _ = tight_summary_memory(monkeypatch, fits=lambda texts: len(texts) == 1)
    run_summary, halved = summaries(tmp_path, cache_dir, "halved", batch_size=4)
    assert run_summary.errors == 0 and halved == alone and len(alone) == 3
    assert all(text for _, text, _ in alone)
    sizes = [len(texts) for texts in calls]
    assert sizes[0] == 3 and sizes.count(1) == 3  # the three recordings' summaries failed together, then ran alone


def test_a_summary_prompt_too_big_even_alone_is_split_until_it_fits(tmp_path, cache_dir, tiny_dir, monkeypatch):
    from omni_caption.captioner.prompts import SUMMARY_PART_TEXT, SUMMARY_REDUCE_TEXT, SUMMARY_TEXT

    whole_recording = SUMMARY_TEXT.split("{")[0]

    def many_lines_in_one_call(text):
        return text.startswith(whole_recording) and text.count("\n[") >= 2

    calls, ran = tight_summary_memory(monkeypatch, fits=lambda texts: not any(map(many_lines_in_one_call, texts)))
    run_summary, rows = summaries(tmp_path, cache_dir, "split", max_new_tokens=32, batch_size=4)
    assert run_summary.errors == 0 and len(rows) == 3 and all(text and error is None for _, text, error in rows)
    assert any(many_lines_in_one_call(t) for texts in calls for t in texts)  # the meeting's one call did not fit
    ran_texts = [t for texts in ran for t in texts]
    assert any(t.startswith(SUMMARY_PART_TEXT.split("{")[0]) for t in ran_texts)  # so its pieces were mapped
    assert any(t.startswith(SUMMARY_REDUCE_TEXT.split("{")[0]) for t in ran_texts)  # and reduced
    assert len(ran_texts) == len(set(ran_texts))  # what ran before the retry did not run again


def test_a_summary_that_never_fits_keeps_the_captions_and_a_retry_adds_it(tmp_path, cache_dir, tiny_dir,
                                                                          monkeypatch):
    calls, ran = tight_summary_memory(monkeypatch, fits=lambda texts: False)
    run_summary, rows = summaries(tmp_path, cache_dir, "never", batch_size=4)
    assert (run_summary.partial, run_summary.errors, run_summary.ok) == (3, 0, 0) and ran == [] and len(calls) < 40
    assert {text for _, text, _ in rows} == {None} and len(rows) == 3
    assert all(error.startswith("summary failed: CUDA out of memory summarising even 32-token pieces")
               and "--summary-model" in error for _, _, error in rows)
    out = tmp_path / "never.parquet"
    kept = duckdb.sql(f"SELECT count(*), count(caption), bool_and(list_contains(flags, 'failed:summary')), "
                      f"min(status) FROM '{out}'").fetchone()
    assert kept == (run_summary.segments, run_summary.segments, True, "ok")
    assert len(run_summary.error_lines) == 3

    monkeypatch.undo()  # the GPU has room again: --retry-errors redoes the summaries alone
    retried, rows = summaries(tmp_path, cache_dir, "never", batch_size=4, retry_errors=True)
    assert (retried.partial, retried.errors, retried.ok) == (0, 0, 3)
    assert all(text and error is None for _, text, error in rows)
    assert duckdb.sql(f"SELECT count(*) FROM '{out}' WHERE list_contains(flags, 'failed:summary')").fetchone() == (0,)


def test_a_segment_too_big_even_alone_fails_its_recording_and_no_other(tmp_path, cache_dir, tiny_dir, monkeypatch):
    from omni_caption.captioner import guarded

    _, alone = run(tmp_path, cache_dir, "alone", decoder="plain", batch_size=1)
    path, longest = duckdb.sql(f"SELECT source_path, end_s - start_s FROM '{tmp_path / 'alone.parquet'}' "
                               "ORDER BY 2 DESC LIMIT 1").fetchone()
    real = guarded.generate_rows
    sizes = []

    def too_big(omni, rows, *args, **kwargs):  # the longest segment never fits, not even alone
        sizes.append(len(rows))
        if any(int(r["feature_attention_mask"].sum()) > (longest - 0.5) * 100 for r in rows):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(omni, rows, *args, **kwargs)

    monkeypatch.setattr(guarded, "generate_rows", too_big)
    summary, kept = run(tmp_path, cache_dir, "too_big", decoder="plain", batch_size=4)
    [error] = duckdb.sql(f"SELECT source_path, error FROM '{tmp_path / 'too_big.parquet'}' "
                         "WHERE status = 'error'").fetchall()
    assert summary.errors == 1 and error[0] == path
    assert f"CUDA out of memory on a {longest:.1f} s segment even alone" in error[1] and "\n" not in error[1]
    assert rounded(kept) == rounded([r for r in alone if r[0] != path]) and kept  # the other recordings are whole
    assert max(sizes) > 1 and 1 in sizes


def test_stage_runtime_choices(tiny):
    caption = TaskConfig(name="caption", model="tiny-random", max_new_tokens=2048)
    summary = TaskConfig(name="summary", model="tiny-random", max_new_tokens=4096)
    assert stage_runtime(tiny, [caption], RunOptions(batch_size="auto")).limit.size == 8  # CPU default
    assert stage_runtime(tiny, [caption], RunOptions(decoder="auto")).decoder is None  # CPU: plain generate
    assert isinstance(stage_runtime(tiny, [caption], RunOptions(decoder="static")).decoder, StaticDecoder)
    refill = stage_runtime(tiny, [caption], RunOptions(decoder="refill", batch_size=4))
    assert isinstance(refill.decoder, RefillDecoder) and refill.segments_per_call == 32
    assert refill.in_flight(100) == 4 and refill.in_flight(3) == 3
    fixed = DecodeRuntime(RefillDecoder(tiny.model.thinker, RefillOptions(fixed_slots=True)), BatchLimit(4))
    assert fixed.in_flight(3) == 4  # compiled, the engine keeps its 4 slots for 3 rows: 4 is what is in memory
    assert stage_runtime(tiny, [summary], RunOptions(decoder="static", batch_size=3)).decoder is None
    assert stage_runtime(tiny, [summary], RunOptions(batch_size=3)).limit.size == 3


def test_auto_batch_size_reads_free_memory_after_loading(tiny):
    free = 200 * 2**20  # 48 sequences of 3.7 MiB (KV 0.4, prefill activations 3.3) fit in 90%
    runtime = decode_runtime(tiny, "plain", "auto", prompt_tokens_for(30.0), 128, free_bytes=lambda device: free)
    memory = MemoryModel.from_text_config(tiny.model.thinker.config.get_text_config(), dtype_bytes=4)
    prompt = 13 * 30 + 64
    assert runtime.limit.size == auto_batch_size(free, memory, prompt, round_up(prompt + 128, 256)) == 32
    with pytest.raises(ValueError):
        decode_runtime(tiny, "turbo", 8, 100, 8)


def test_refill_slots_are_sized_with_one_prefill_chunk_not_every_slot(tiny):
    """tiny-random's prefill activations (3.3 MiB a row) outweigh its KV cache (0.4 MiB): prefilling in chunks
    frees room for 8 times the slots a fixed batch gets, and the chunk takes what the slots leave."""
    free = 200 * 2**20
    prompt = prompt_tokens_for(30.0)
    fixed = decode_runtime(tiny, "static", "auto", prompt, 128, free_bytes=lambda device: free)
    refill = decode_runtime(tiny, "refill", "auto", prompt, 128, free_bytes=lambda device: free)
    memory = MemoryModel.from_text_config(tiny.model.thinker.config.get_text_config(), dtype_bytes=4)
    cache_len = round_up(prompt + 128, 256)
    assert fixed.limit.size == 32 and fixed.decoder.options.max_batch == 256
    assert refill.limit.size == 256 and refill.decoder.options.prefill_rows == 24
    assert memory.bytes_for_batch(256, prompt, cache_len, prefill_rows=24) <= 0.9 * free
    assert memory.bytes_for_batch(256, prompt, cache_len, prefill_rows=25) > 0.9 * free
    assert decode_runtime(tiny, "refill", 8, prompt, 128).decoder.options.prefill_rows is None  # CPU: no budget


def test_auto_refill_slots_hold_half_the_cap_where_that_buys_more_slots(tiny):
    """A 1024-token cap in 50 MiB: slots of prompt + 512 (1024 positions) instead of prompt + 1024 (1536)."""
    prompt = prompt_tokens_for(30.0)
    refill = decode_runtime(tiny, "refill", "auto", prompt, 1024, free_bytes=lambda device: 50 * 2**20)
    memory = MemoryModel.from_text_config(tiny.model.thinker.config.get_text_config(), dtype_bytes=4)
    full_cap_slots = auto_batch_size(50 * 2**20, memory, prompt, 1536, prefill_rows=4, sizes=slot_counts(256))
    assert refill.decoder.options.slot_cache_len == 1024 and refill.limit.size == 48 > full_cap_slots == 32
    assert refill.decoder.options.min_cache_len == prompt + 1024  # the full-length round's shape
    assert memory.bytes_for_batch(48, prompt, 1024, prefill_rows=refill.decoder.options.prefill_rows) <= 0.9 * 50 * 2**20
    roomy = decode_runtime(tiny, "refill", "auto", prompt, 1024, free_bytes=lambda device: 400 * 2**20)
    assert roomy.limit.size == 256 and roomy.decoder.options.slot_cache_len is None  # the whole cap fits anyway
    asked = decode_runtime(tiny, "refill", 16, prompt, 1024, free_bytes=lambda device: 50 * 2**20)
    assert asked.limit.size == 16 and asked.decoder.options.slot_cache_len is None  # a number asked: as asked
