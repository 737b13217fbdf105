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
rate and the realtime factor. `tokenise_ms_per_clip` is the host CPU time per clip of
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAPTION_TOKENS = 400  # a Captioner caption of a 30 s clip runs about this long
CAPTION_CAP = 2048  # a caption stage's token cap (captioner/tasks.py)
CORPUS_S = 10 * 3600.0
QUEUE_BATCHES = (4,)  # queue runs: clips = k x slots for each k

# The released Qwen3-Omni-30B-A3B thinker (ARCHITECTURE §2), as in the shared baseline.
FULL_TEXT = dict(vocab_size=152064, hidden_size=2048, intermediate_size=768, num_hidden_layers=48,
                 num_attention_heads=32, num_key_value_heads=4, head_dim=128, num_experts=128,
                 num_experts_per_tok=8, moe_intermediate_size=768, max_position_embeddings=65536,
                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                  "mrope_section": [24, 20, 20], "interleaved": True})
FULL_AUDIO = dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120,
                  output_dim=2048, num_mel_bins=128, n_window=50, n_window_infer=800)
FULL_VISION = dict(depth=27, hidden_size=1152, intermediate_size=4304, out_hidden_size=2048)
# <|im_start|> <|im_end|> <|audio_pad|> <|audio_start|> <|audio_end|> in the released tokenizer.
FULL_SPECIAL_IDS = dict(im_start=151644, im_end=151645, audio_pad=151646, audio_start=151647, audio_end=151648)


def import_project() -> None:
    """`omni_caption` from this checkout when it is not installed (the GPU machine gets a bare copy)."""
    try:
        import omni_caption.model  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO))
        import omni_caption

        omni_caption.__path__.append(str(REPO))  # the rooms (model/, ...) sit at the top of the repository


@dataclass
class Run:
    decoder: str  # plain | engine
    batch: int
    new_tokens: int
    status: str = "ok"  # ok | OOM | skipped
    prefill_s: float | None = None
    decode_ms_per_step: float | None = None
    tok_per_s: float | None = None
    x_realtime: float | None = None  # captions of 30 s clips, CAPTION_TOKENS each
    warmup_s: float | None = None  # engine: first call of this shape (compile + CUDA graph) minus a timed call
    x_realtime_10h: float | None = None  # over a 10-hour corpus, warm-up charged once
    peak_gib: float | None = None
    padded_batch: int | None = None
    cache_len: int | None = None
    clips: int | None = None  # queue runs: clips decoded
    slot_use: float | None = None  # queue runs: share of slot-steps spent on real caption tokens
    continued: int | None = None  # refill queue runs: captions that filled their slot and went on at full length
    tok_per_step: float | None = None  # queue runs: caption tokens per decode step (at one step time, the rate)
    clips_per_kstep: float | None = None  # queue runs: clips per 1000 decode steps (at one step time, x realtime)


@dataclass
class Report:
    versions: dict
    device: str
    model: dict
    runs: list[Run] = field(default_factory=list)
    tokenise_ms_per_clip: float | None = None  # host CPU per clip, hidden by the pipeline's tokeniser thread
    pipeline_auto: dict | None = None  # GPU: what `--batch-size auto` picks for a caption stage on this GPU


def full_thinker_config():
    from transformers import Qwen3OmniMoeThinkerConfig

    config = Qwen3OmniMoeThinkerConfig(text_config=FULL_TEXT, audio_config=FULL_AUDIO, vision_config=FULL_VISION)
    if not hasattr(config, "vision_start_token_id"):  # transformers 5.x thinker-only config lacks it
        config.vision_start_token_id = 151652
    return config


def build_thinker(config, device: str):
    """Random bf16 weights built where they will run (`meta`: shapes only, no memory)."""
    import torch
    from transformers import Qwen3OmniMoeThinkerForConditionalGeneration

    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3OmniMoeThinkerForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    return model.eval()


def tiny_thinker(cache_dir: Path | None):
    from omni_caption.model import LoadOptions, load_model

    omni = load_model("tiny-random", LoadOptions(device="cpu", cache_dir=cache_dir))
    tokens = omni.processor.tokenizer.convert_tokens_to_ids(
        ["<|im_start|>", "<|im_end|>", "<|audio_pad|>", "<|audio_start|>", "<|audio_end|>"])
    return omni.model.thinker, dict(zip(("im_start", "im_end", "audio_pad", "audio_start", "audio_end"), tokens))


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


def clip_inputs(thinker, special: dict, batch: int, clip_s: float) -> dict:
    """`batch` clips of random log-mel in the Captioner's prompt layout (audio only, no instruction)."""
    import torch
    from transformers.models.qwen3_omni_moe.modeling_qwen3_omni_moe import _get_feat_extract_output_lengths

    frames = int(clip_s * 100)
    n_audio = int(_get_feat_extract_output_lengths(torch.tensor(frames)).item())
    text = [special["im_start"], 872 % thinker.vocab_size, 198 % thinker.vocab_size]  # "user", "\n"
    ids = (text + [special["audio_start"]] + [special["audio_pad"]] * n_audio + [special["audio_end"], special["im_end"],
           198 % thinker.vocab_size, special["im_start"], 77091 % thinker.vocab_size, 198 % thinker.vocab_size])
    device, dtype = thinker.device, thinker.dtype
    input_ids = torch.tensor([ids] * batch, device=device)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
            "input_features": torch.randn(batch, thinker.config.audio_config.num_mel_bins, frames, device=device,
                                          dtype=dtype),
            "feature_attention_mask": torch.ones(batch, frames, device=device, dtype=torch.long)}


def sync(thinker) -> None:
    import torch

    if thinker.device.type == "cuda":
        torch.cuda.synchronize()


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


def caption_speed(batch: int, clip_s: float, prefill_s: float, step_s: float) -> float:
    """Audio seconds per wall second when a batch of clips is prefilled and decoded CAPTION_TOKENS steps."""
    return batch * clip_s / (prefill_s + CAPTION_TOKENS * step_s)


def significant(value: float, digits: int = 3) -> float:
    # Rounding to decimals would print a slow CPU run's 0.04x realtime as 0.0.
    return float(f"{value:.{digits}g}")


def corpus_speed(x_realtime: float, warmup_s: float) -> float:
    """x realtime over a 10-hour corpus when `warmup_s` is paid once (compiled graphs are reused)."""
    return CORPUS_S / (CORPUS_S / x_realtime + warmup_s)


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


def clip_rows(thinker, special: dict, count: int, clip_s: float) -> list[dict]:
    """`count` single-clip inputs on the CPU, as the pipeline prepares them for the refill engine."""
    return [{k: v.cpu() for k, v in clip_inputs(thinker, special, 1, clip_s).items()} for _ in range(count)]


def measure_queue(kind: str, thinker, special: dict, slots: int, batches: int, args,
                  pipeline: dict | None = None) -> Run:
    """A queue of `batches` x `slots` clips with varied caption lengths: `static` in fixed batches, `refill`
    through slots. `pipeline` (pipeline_auto's answer): the cache length, slot length and prefill chunk a
    caption stage takes, instead of the queue's own longest caption and every slot prefilled at once
    (`args.slot_cache_len`, where given, is the slot length instead)."""
    import torch

    from omni_caption.model.decode_engine import EngineOptions, StaticDecoder
    from omni_caption.model.decode_runtime import AUDIO_TOKENS_PER_S
    from omni_caption.model.generation import DecodingOptions
    from omni_caption.model.refill_engine import RefillDecoder, RefillOptions
    from omni_caption.model.row_batch import batch_rows, to_device

    count = batches * slots
    caps = caption_lengths(count, args.caption_tokens, long_share=args.long_captions, long_len=args.long_len,
                           loop_stop_after=args.loop_stop_after)
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
    run = Run(decoder=f"{kind}-queue", batch=slots, new_tokens=max(caps), clips=count)
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


def print_table(runs: list[Run]) -> None:
    header = ("decoder", "batch", "clips", "cache", "ms/step", "tok/s", "x realtime", "warm-up s", "x rt 10 h",
              "peak GiB", "slot use", "tok/step", "clips/kstep", "continued", "status")
    print(" | ".join(header))
    for r in runs:
        cells = (r.decoder, r.batch, r.clips, r.cache_len, r.decode_ms_per_step, r.tok_per_s, r.x_realtime, r.warmup_s, r.x_realtime_10h,
                 r.peak_gib, r.slot_use, r.tok_per_step, r.clips_per_kstep, r.continued, r.status)
        print(" | ".join("-" if c is None else str(c) for c in cells), flush=True)


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


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny-random on the CPU: checks the script end to end")
    parser.add_argument("--batches", default=None, help="comma-separated (default: 1,64 on a GPU, 1,4 with --tiny)")
    parser.add_argument("--engine-batches", default=None, help="extra batches for the engine only (default 128 on GPU)")
    parser.add_argument("--new-tokens", type=int, default=None, help="forced output length (default 128; 8 tiny)")
    parser.add_argument("--clip-s", type=float, default=30.0)
    parser.add_argument("--queue-slots", default=None,
                        help="slots of the queue runs, static vs refill (default 64; 2 with --tiny; 0: none); "
                             "'auto': the slots, cache length and prefill chunk a caption stage takes on this GPU")
    parser.add_argument("--queue-batches", default=",".join(map(str, QUEUE_BATCHES)),
                        help="queue lengths in batches of slots, comma-separated (default %(default)s)")
    parser.add_argument("--caption-tokens", type=int, default=None,
                        help=f"mean caption length of the queue runs (default {CAPTION_TOKENS}; 64 with --tiny)")
    parser.add_argument("--long-captions", type=float, default=0.0,
                        help="share of the queue's captions that run to --long-len tokens (looping to the cap)")
    parser.add_argument("--long-len", type=int, default=None, help="default: the caption cap, 2048 (256 --tiny)")
    parser.add_argument("--loop-stop-after", type=int, default=0,
                        help="a looping caption ends this many tokens after its loop began, as the pipeline's loop "
                             "stop ends it (about 136: 128 tokens, then the next sync); 0: it runs to --long-len")
    parser.add_argument("--slot-cache-len", type=int, default=None,
                        help="refill queue runs: slots of this many positions (default: none; with --queue-slots "
                             "auto, the pipeline's)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="start no run after this many seconds")
    parser.add_argument("--profile", action="store_true", help="profile 8 steps, plain vs engine, largest batch")
    parser.add_argument("--json", type=Path, default=None, help="default: $OUT/gpu_throughput.json")
    parser.add_argument("--cache-dir", type=Path, default=None, help="where tiny-random is built")
    args = parser.parse_args(argv)
    import_project()
    import torch
    import transformers

    from omni_caption.model.batch_sizing import MemoryModel
    from omni_caption.model.decode_engine import EngineOptions, StaticDecoder

    started = time.perf_counter()
    out_dir = Path(os.environ.get("OUT", "/tmp"))
    json_path = args.json or out_dir / "gpu_throughput.json"
    batches = [int(b) for b in (args.batches or ("1,4" if args.tiny else "1,64")).split(",")]
    extra = [int(b) for b in (args.engine_batches or ("" if args.tiny else "128")).split(",") if b]
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
    pipeline = None
    if args.queue_slots == "auto":
        if report.pipeline_auto is None:
            parser.error("--queue-slots auto sizes from free GPU memory: it needs a GPU")
        pipeline = report.pipeline_auto
        queue_slots = pipeline["refill_slots"]
    else:
        queue_slots = int(args.queue_slots) if args.queue_slots is not None else (2 if args.tiny else 64)
    print(json.dumps(asdict(report)), flush=True)
    decoder = StaticDecoder(thinker, EngineOptions(max_batch=max(batches + extra)))
    measure("plain", thinker, special, 1, argparse.Namespace(**{**vars(args), "new_tokens": 4}))  # warm-up
    queue_batches = [int(k) for k in args.queue_batches.split(",") if k] if queue_slots else []
    queues = [(f"{kind}-queue", queue_slots, k) for k in queue_batches for kind in ("refill", "static")]
    plan = ([("plain", b, 0) for b in batches] + [("engine", b, 0) for b in batches] + queues
            + [("engine", b, 0) for b in extra])
    for name, batch, k in plan:
        if time.perf_counter() - started > args.budget_s:
            report.runs.append(Run(decoder=name, batch=batch, new_tokens=args.new_tokens, status="skipped"))
            continue
        try:
            if name.endswith("-queue"):
                report.runs.append(measure_queue(name.removesuffix("-queue"), thinker, special, batch, k, args,
                                                 pipeline))
            else:
                report.runs.append(measure(name, thinker, special, batch, args,
                                           decoder if name == "engine" else None))
        except torch.OutOfMemoryError:
            report.runs.append(Run(decoder=name, batch=batch, new_tokens=args.new_tokens, status="OOM"))
            decoder.release()
            torch.cuda.empty_cache()
        print_table(report.runs[-1:])
        json_path.write_text(json.dumps(asdict(report), indent=1))
    print_table(report.runs)
    if args.profile:
        largest = max((r.batch for r in report.runs if r.status == "ok"), default=1)
        profile_steps(thinker, special, min(largest, max(batches)), args, decoder, out_dir)
    return report


if __name__ == "__main__":
    main()
