"""Queue runs: many clips with captions of varied length, through the static engine's fixed batches or the
refill engine's slots, and the batch a caption stage's `--batch-size auto` takes on this GPU."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ scripts are loaded by path, not as a package

from throughput_report import Run, corpus_speed, significant  # noqa: E402
from thinker_shapes import clip_rows  # noqa: E402

CAPTION_CAP = 2048  # a caption stage's token cap (captioner/tasks.py)
QUEUE_BATCHES = (4,)  # queue runs: clips = k x slots for each k


def caption_lengths(count: int, mean: int, seed: int = 0, long_share: float = 0.0, long_len: int = 0,
                    loop_stop_after: int = 0) -> list[int]:
    """Caption lengths of a queue: normal around `mean` (sd 30 %), kept within 25 %..175 % of it; with
    `long_share`, that share of them (at random places) runs to `long_len` instead, as a caption that
    loops to the token cap does, or with `loop_stop_after`, that many tokens past its drawn length (where
    its loop began), as the loop stop ends it."""
    import numpy as np

    rng = np.random.default_rng(seed)
    drawn = np.clip(rng.normal(mean, 0.3 * mean, count).round(), max(1, mean // 4), mean * 7 // 4)
    looping = rng.permutation(count)[:round(long_share * count)]
    drawn[looping] = np.minimum(drawn[looping] + loop_stop_after, long_len) if loop_stop_after else long_len
    return [int(n) for n in drawn]


@dataclass(frozen=True)
class QueueRun:
    """One queue run: `batches` x `slots` clips through the `kind` engine (refill | static). `pipeline`
    (pipeline_auto's answer, for `--queue-slots auto`): the cache length, slot length and prefill chunk a
    caption stage takes, instead of the queue's own longest caption and every slot prefilled at once.
    `loop_stop_after`: a looping caption ends that many tokens after its loop began (0: at the cap)."""

    kind: str
    slots: int
    batches: int
    loop_stop_after: int = 0
    pipeline: dict | None = None


def queue_plan(slot_specs: str, batches: str, loop_stops: str, kinds: str,
               auto: dict | None) -> list[QueueRun]:
    """The queue runs the flags ask for, all in one process (the 30B build, a minute or more of device time,
    is paid once rather than per device call): every slot count (an int, or 'auto' for `auto`; 0 for none) x loop stop x
    queue length x kind, in that nesting. Raises ValueError on a spec it cannot run."""
    runs = []
    for spec in slot_specs.split(","):
        if spec.strip() == "auto":
            if auto is None:
                raise ValueError("--queue-slots auto sizes from free GPU memory: it needs a GPU")
            slots, pipeline = auto["refill_slots"], auto
        else:
            slots, pipeline = int(spec), None
        if slots <= 0:
            continue
        for stop in (int(n) for n in loop_stops.split(",")):
            for k in (int(n) for n in batches.split(",") if n):
                for kind in kinds.split(","):
                    if kind not in ("refill", "static"):
                        raise ValueError(f"queue kind must be refill or static, not {kind!r}")
                    runs.append(QueueRun(kind, slots, k, stop, pipeline))
    return runs


def measure_queue(queue: QueueRun, thinker, special: dict, args) -> Run:
    """A queue of clips with varied caption lengths (`args.long_captions` of them looping): `static` in fixed
    batches, `refill` through slots (`args.slot_cache_len`, where given, is the slot length)."""
    import torch

    from omni_caption.model.decode_engine import EngineOptions, StaticDecoder
    from omni_caption.model.decode_runtime import AUDIO_TOKENS_PER_S
    from omni_caption.model.generation import DecodingOptions
    from omni_caption.model.refill_engine import RefillDecoder, RefillOptions
    from omni_caption.model.row_batch import batch_rows, to_device

    kind, slots, pipeline = queue.kind, queue.slots, queue.pipeline
    count = queue.batches * slots
    caps = caption_lengths(count, args.caption_tokens, long_share=args.long_captions, long_len=args.long_len,
                           loop_stop_after=queue.loop_stop_after)
    rows = clip_rows(thinker, special, count, args.clip_s)
    bound = rows[0]["input_ids"].shape[1] + max(caps)  # pinned, as a stage pins it: one shape, one graph
    prefill_rows, slot_len = None, args.slot_cache_len
    if pipeline is not None:
        bound, prefill_rows = max(bound, pipeline["cache_len"]), pipeline["prefill_rows"]
        slot_len = slot_len or pipeline["slot_cache_len"]
    decoder = (RefillDecoder(thinker, RefillOptions(min_cache_len=bound, prefill_rows=prefill_rows,
                                                    slot_cache_len=slot_len))
               if kind == "refill"
               else StaticDecoder(thinker, EngineOptions(max_batch=slots, min_cache_len=bound)))
    run = queue_record(queue, args, new_tokens=max(caps))
    # The full-length round's shape compiles in the warm-up too: a clip whose prompt outgrows every slot.
    warm_rows = rows[:slots]
    if kind == "refill" and slot_len:
        warm_rows = warm_rows + clip_rows(thinker, special, 1, slot_len / AUDIO_TOKENS_PER_S + 5.0)
    if thinker.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def decode_queue(queue_rows, queue_caps) -> tuple[int, int, float]:
        """(slot-steps, steps, prefill s) of decoding the queue."""
        if kind == "refill":
            done = decoder.decode_rows(queue_rows, DecodingOptions(max_new_tokens=max(queue_caps)), [], 0, slots,
                                       caps=queue_caps)
            run.cache_len, run.continued = done.cache_len, done.continued  # the slots' length
            return done.slot_steps, done.steps, done.prefill_s
        slot_steps, all_steps, prefill_s = 0, 0, 0.0
        for start in range(0, len(queue_rows), slots):
            part = batch_rows(queue_rows[start:start + slots], 0)
            steps = max(queue_caps[start:start + slots])  # the batch runs until its longest caption ends
            done = decoder.decode(to_device(part, thinker.device, thinker.dtype), DecodingOptions(max_new_tokens=steps),
                                  [], 0)
            slot_steps, all_steps = slot_steps + done.padded_batch * steps, all_steps + steps
            prefill_s += done.prefill_s
            run.cache_len = done.cache_len
        return slot_steps, all_steps, prefill_s

    started = time.perf_counter()
    decode_queue(warm_rows, [2] * len(warm_rows))  # compiles and records its graphs (the cache length is pinned)
    warmup_s = time.perf_counter() - started
    started = time.perf_counter()
    slot_steps, steps, prefill_s = decode_queue(rows, caps)
    wall_s = time.perf_counter() - started
    run.warmup_s = round(max(0.0, warmup_s), 2)
    run.prefill_s = round(prefill_s, 3)
    run.decode_ms_per_step = round(1000 * (wall_s - prefill_s) / max(1, steps), 2)
    run.tok_per_s = significant(sum(caps) / wall_s)
    run.x_realtime = significant(count * args.clip_s / wall_s)
    run.x_realtime_10h = significant(corpus_speed(run.x_realtime, run.warmup_s))
    run.slot_use = round(sum(caps) / slot_steps, 3)
    run.tok_per_step = round(sum(caps) / steps, 1)
    run.clips_per_kstep = round(1000 * count / steps, 1)
    if thinker.device.type == "cuda":
        run.peak_gib = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    return run


def queue_record(queue: QueueRun, args, **figures) -> Run:
    """The row of a queue run, its figures to come (or its status: OOM, skipped)."""
    return Run(decoder=f"{queue.kind}-queue", batch=queue.slots, clips=queue.batches * queue.slots,
               loops=loops_label(args.long_captions, queue.loop_stop_after), **figures)


def loops_label(long_share: float, loop_stop_after: int) -> str | None:
    """How a queue's looping captions end, for the table: '1% to 2048' (the cap) or '1% stop +136'."""
    if not long_share:
        return None
    return f"{long_share:.0%} " + (f"stop +{loop_stop_after}" if loop_stop_after else "to cap")


def pipeline_auto(thinker, memory, caption_cap: int = CAPTION_CAP) -> dict | None:
    """The batch a caption stage's `--batch-size auto` takes in this memory (None off CUDA): a fixed batch
    (static engine, plain) pays every row's prefill activations, refill slots one prefill chunk's, and they
    hold the prompt and half the cap where that buys more of them (`slot_cache_len`)."""
    from omni_caption.model.batch_sizing import prefill_rows_that_fit, round_up
    from omni_caption.model.decode_runtime import free_gpu_bytes, prompt_tokens_for, refill_slots, resolve_batch_size

    free = free_gpu_bytes(str(thinker.device))
    if free is None:
        return None
    prompt = prompt_tokens_for(30.0)
    fixed = resolve_batch_size("auto", memory, free, prompt, caption_cap)
    slots, slot_cache_len = refill_slots(free, memory, prompt, caption_cap)
    cache_len = round_up(prompt + caption_cap, 256)
    return {"free_gib": round(free / 2**30, 1), "caption_cap": caption_cap, "cache_len": cache_len,
            "fixed_batch": fixed, "refill_slots": slots, "slot_cache_len": slot_cache_len,
            "prefill_rows": prefill_rows_that_fit(free, memory, slots, prompt, slot_cache_len or cache_len)}
