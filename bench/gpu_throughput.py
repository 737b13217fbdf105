"""Caption decoding throughput: plain transformers `generate` vs the static and refill engines, in one process.

    python bench/gpu_throughput.py --tiny                 # tiny-random on this machine (checks the script)
    PYTHONUNBUFFERED=1 python3 bench/gpu_throughput.py    # on a GPU: 30B-A3B thinker shapes, random bf16

The full-shape recipe is `../shared/bench/gpu_thinker_baseline.py`'s
(ARCHITECTURE §6): the released thinker's shapes with random bf16 weights
built on the GPU, 30 s clips of random log-mel (390 audio tokens) in the
Captioner's prompt layout, and a forced output length (random weights never
stop). Per decoder and batch size it prints decode ms/step, output tok/s,
peak memory and the caption speed in x realtime, taking a caption as
CAPTION_TOKENS tokens per 30 s clip: one batch takes prefill + that many
steps. The engine's first call per shape compiles and records its CUDA graph
(`warmup_s`); that cost is reported apart and charged in the projected speed
over a 10-hour corpus.

Real captions differ in length, which fixed batches pay for: a batch decodes
until its longest caption ends. The queue runs (`static-queue`,
`refill-queue`) decode k x slots clips (`--queue-batches k,...`) whose caption lengths are
drawn around CAPTION_TOKENS (normal, sd 30 %, 25 %..175 %, fixed seed): the
static engine in fixed batches of `slots`, each decoding to its longest
caption; the refill engine through `slots` slots with per-clip caps. Their
x realtime is clips x 30 s over the wall time of the whole queue, prefills
and the tail included; `slot_use` is the share of slot-steps that decoded a
real caption token. Slot use is a count, the same on any device, so the
refill engine's tail (slots idle once the queue runs dry) can be measured
for k = 1, 2, 4, 8 with --tiny on a CPU: it sizes the pipeline's groups
(pipelines/grouping.py). `--long-captions SHARE` makes that share of a queue's
captions loop to the cap (`--long-len`, 2048), and `--slot-cache-len` (or
`--queue-slots auto`, the pipeline's choice) gives refill slots fewer
positions than prompt + cap: a caption that fills its slot goes on in a
full-length round, counted in `continued`. `--loop-stop-after N` stands for
the pipeline's loop stop (model/loop_stop.py; random weights make no real
loops, so it is a length, not a check): a looping caption ends N tokens after
its loop began (its drawn length). `tok/step` is caption tokens per decode
step and `clips/kstep` clips per 1000 steps: at one step time, the caption
rate and the realtime factor. `--queue-slots` and `--loop-stop-after` take comma lists, `--queue-kinds`
the engines: every combination runs in this one process, on one build of the model (bench/gpu_owed.sh, the
owed GPU calls, uses this). `tokenise_ms_per_clip` is the host CPU time per clip of
the processor (log-mel + prompt): the pipeline spends it on the next batch in
a worker thread while the GPU decodes this one. Results go to `$OUT/gpu_throughput.json` (or --json),
rewritten after every run so a timeout keeps what finished.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ scripts are loaded by path, not as a package

from decode_queue import (CAPTION_CAP, QUEUE_BATCHES, measure_queue, pipeline_auto, queue_plan,  # noqa: E402
                          queue_record)
from thinker_shapes import (FULL_SPECIAL_IDS, build_thinker, clip_inputs, full_thinker_config,  # noqa: E402
                            import_project, sync, tiny_thinker)
from throughput_report import (CAPTION_TOKENS, Report, Run, caption_speed, corpus_speed, print_table,  # noqa: E402
                               significant)


def tokenise_ms_per_clip(cache_dir: Path | None, clip_s: float, clips: int = 16) -> float:
    """CPU time per clip of what the pipeline's tokeniser thread does ahead of the GPU (processor: log-mel +
    chat prompt); tiny-random's processor has the released feature extractor (128 mels, 10 ms hop)."""
    import numpy as np

    from omni_caption.model import LoadOptions, Prompt, load_model
    from omni_caption.model.generation import prepare_rows

    omni = load_model("tiny-random", LoadOptions(device="cpu", cache_dir=cache_dir))
    audios = [np.random.default_rng(i).standard_normal(int(clip_s * 16_000)).astype(np.float32) for i in range(clips)]
    prepare_rows(omni, audios[:1], Prompt())  # first-call set-up is not per clip
    started = time.perf_counter()
    prepare_rows(omni, audios, Prompt())
    return significant((time.perf_counter() - started) / clips * 1000)


def time_plain(thinker, inputs: dict, new_tokens: int) -> tuple[float, float]:
    """(prefill_s, whole generate s) of transformers' `generate` forced to `new_tokens`, greedy.

    On a CPU each is the best of 3: there one decode step is as short as a generate call's jitter, and the
    step time is the difference of the two.
    """
    import torch

    timings = []
    for tokens in (1, new_tokens):
        best = float("inf")
        for _ in range(1 if thinker.device.type == "cuda" else 3):
            sync(thinker)
            started = time.perf_counter()
            with torch.inference_mode():
                thinker.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
            sync(thinker)
            best = min(best, time.perf_counter() - started)
        timings.append(best)
    return timings[0], timings[1]


def measure(decoder_name: str, thinker, special: dict, batch: int, args, decoder=None) -> Run:
    import torch

    from omni_caption.model.generation import DecodingOptions

    run = Run(decoder=decoder_name, batch=batch, new_tokens=args.new_tokens)
    inputs = clip_inputs(thinker, special, batch, args.clip_s)
    if thinker.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if decoder is None:
        prefill_s, total_s = time_plain(thinker, inputs, args.new_tokens)
        step_s = (total_s - prefill_s) / max(args.new_tokens - 1, 1)
    else:
        forced = DecodingOptions(max_new_tokens=args.new_tokens)
        started = time.perf_counter()
        decoder.decode(inputs, forced, eos_ids=[], pad_id=0)  # compiles and records this shape's graph
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        decoded = decoder.decode(inputs, forced, eos_ids=[], pad_id=0)
        total_s = time.perf_counter() - started
        prefill_s, step_s = decoded.prefill_s, decoded.decode_s / max(args.new_tokens - 1, 1)
        run.warmup_s = round(max(0.0, first_s - total_s), 2)  # timing noise can make it a little negative
        run.padded_batch, run.cache_len = decoded.padded_batch, decoded.cache_len
    run.prefill_s = round(prefill_s, 3)
    run.decode_ms_per_step = round(1000 * step_s, 2)
    run.tok_per_s = significant(batch * args.new_tokens / total_s)
    run.x_realtime = significant(caption_speed(batch, args.clip_s, prefill_s, step_s))
    run.x_realtime_10h = significant(corpus_speed(run.x_realtime, run.warmup_s or 0.0))
    if thinker.device.type == "cuda":
        run.peak_gib = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    return run


def profile_steps(thinker, special: dict, batch: int, args, decoder, out_dir: Path) -> None:
    """Top CUDA ops of a few decode steps, plain vs engine, to check where a step's time goes."""
    from torch.profiler import ProfilerActivity, profile

    from omni_caption.model.generation import DecodingOptions

    inputs = clip_inputs(thinker, special, batch, args.clip_s)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if thinker.device.type == "cuda" else [])
    sort = "cuda_time_total" if thinker.device.type == "cuda" else "cpu_time_total"
    for name, call in (("plain", lambda: time_plain(thinker, inputs, 8)),
                       ("engine", lambda: decoder.decode(inputs, DecodingOptions(max_new_tokens=8), [], 0))):
        with profile(activities=activities) as prof:
            call()
        table = prof.key_averages().table(sort_by=sort, row_limit=20)
        (out_dir / f"profile_{name}_b{batch}.txt").write_text(table)
        print(f"--- profile {name}, batch {batch}, 8 tokens ---\n{table}", flush=True)


def int_list(value: str | None, default: str) -> list[int]:
    """A comma-separated flag; given empty (`--engine-batches ""`), none: only an absent flag takes `default`."""
    return [int(n) for n in (default if value is None else value).split(",") if n.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny-random on the CPU: checks the script end to end")
    parser.add_argument("--batches", default=None,
                        help="plain and engine batches, comma-separated (default: 1,64 on a GPU, 1,4 with --tiny; "
                             "'': none)")
    parser.add_argument("--engine-batches", default=None,
                        help="extra batches for the engine only (default 128 on a GPU; '': none)")
    parser.add_argument("--new-tokens", type=int, default=None, help="forced output length (default 128; 8 tiny)")
    parser.add_argument("--clip-s", type=float, default=30.0)
    parser.add_argument("--queue-slots", default=None,
                        help="slots of the queue runs, comma-separated (default 64; 2 with --tiny; 0: none); "
                             "'auto': the slots, cache length and prefill chunk a caption stage takes on this GPU")
    parser.add_argument("--queue-kinds", default="refill,static", help="engines of the queue runs (%(default)s)")
    parser.add_argument("--queue-batches", default=",".join(map(str, QUEUE_BATCHES)),
                        help="queue lengths in batches of slots, comma-separated (default %(default)s)")
    parser.add_argument("--caption-tokens", type=int, default=None,
                        help=f"mean caption length of the queue runs (default {CAPTION_TOKENS}; 64 with --tiny)")
    parser.add_argument("--long-captions", type=float, default=0.0,
                        help="share of the queue's captions that run to --long-len tokens (looping to the cap)")
    parser.add_argument("--long-len", type=int, default=None, help="default: the caption cap, 2048 (256 --tiny)")
    parser.add_argument("--loop-stop-after", default="0",
                        help="a looping caption ends this many tokens after its loop began, as the pipeline's loop "
                             "stop ends it (about 136: 128 tokens, then the next sync); 0: it runs to --long-len; "
                             "comma-separated: each queue run once per value")
    parser.add_argument("--slot-cache-len", type=int, default=None,
                        help="refill queue runs: slots of this many positions (default: none; with --queue-slots "
                             "auto, the pipeline's)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="start no run after this many seconds")
    parser.add_argument("--profile", action="store_true", help="profile 8 steps, plain vs engine, largest batch")
    parser.add_argument("--json", type=Path, default=None, help="default: $OUT/gpu_throughput.json")
    parser.add_argument("--cache-dir", type=Path, default=None, help="where tiny-random is built")
    return parser


def main(argv: list[str] | None = None) -> Report:
    parser = build_parser()
    args = parser.parse_args(argv)
    import_project()
    import torch
    import transformers

    from omni_caption.model.batch_sizing import MemoryModel
    from omni_caption.model.decode_engine import EngineOptions, StaticDecoder

    started = time.perf_counter()
    out_dir = Path(os.environ.get("OUT", "/tmp"))
    json_path = args.json or out_dir / "gpu_throughput.json"
    batches = int_list(args.batches, "1,4" if args.tiny else "1,64")
    extra = int_list(args.engine_batches, "" if args.tiny else "128")
    args.new_tokens = args.new_tokens or (8 if args.tiny else 128)
    args.caption_tokens = args.caption_tokens or (64 if args.tiny else CAPTION_TOKENS)
    args.long_len = args.long_len or (256 if args.tiny else CAPTION_CAP)
    if args.tiny:
        thinker, special = tiny_thinker(args.cache_dir)
    else:
        if not torch.cuda.is_available():
            parser.error("no CUDA GPU: run with --tiny on a CPU")
        thinker, special = build_thinker(full_thinker_config(), "cuda"), FULL_SPECIAL_IDS
    memory = MemoryModel.from_text_config(thinker.config.get_text_config(), thinker.dtype.itemsize)
    report = Report(versions={"torch": torch.__version__, "transformers": transformers.__version__},
                    device=torch.cuda.get_device_name(0) if thinker.device.type == "cuda" else "cpu",
                    model={"params_B": round(sum(p.numel() for p in thinker.parameters()) / 1e9, 4),
                           "build_s": round(time.perf_counter() - started, 1), "memory_model": asdict(memory)})
    report.tokenise_ms_per_clip = tokenise_ms_per_clip(args.cache_dir, args.clip_s)
    report.pipeline_auto = pipeline_auto(thinker, memory)
    try:
        queues = queue_plan(args.queue_slots or ("2" if args.tiny else "64"), args.queue_batches, args.loop_stop_after,
                            args.queue_kinds, report.pipeline_auto)
    except ValueError as exc:
        parser.error(str(exc))
    print(json.dumps(asdict(report)), flush=True)
    decoder = StaticDecoder(thinker, EngineOptions(max_batch=max(batches + extra, default=1)))
    measure("plain", thinker, special, 1, argparse.Namespace(**{**vars(args), "new_tokens": 4}))  # warm-up
    plan = ([("plain", b, None) for b in batches] + [("engine", b, None) for b in batches]
            + [(f"{q.kind}-queue", q.slots, q) for q in queues] + [("engine", b, None) for b in extra])
    for name, batch, queue in plan:
        def not_run(status: str) -> Run:
            return (Run(decoder=name, batch=batch, new_tokens=args.new_tokens, status=status) if queue is None
                    else queue_record(queue, args, new_tokens=args.new_tokens, status=status))

        if time.perf_counter() - started > args.budget_s:
            report.runs.append(not_run("skipped"))
            continue
        try:
            if queue is not None:
                report.runs.append(measure_queue(queue, thinker, special, args))
            else:
                report.runs.append(measure(name, thinker, special, batch, args,
                                           decoder if name == "engine" else None))
        except torch.OutOfMemoryError:
            report.runs.append(not_run("OOM"))
            decoder.release()
            torch.cuda.empty_cache()
        print_table(report.runs[-1:])
        json_path.write_text(json.dumps(asdict(report), indent=1))
    print_table(report.runs)
    if args.profile:
        largest = max((r.batch for r in report.runs if r.status == "ok"), default=1)
        profile_steps(thinker, special, min(largest, max(batches, default=1)), args, decoder, out_dir)
    return report


if __name__ == "__main__":
    main()
