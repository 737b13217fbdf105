"""What a throughput run measured, the speed arithmetic, and the table it prints."""

from __future__ import annotations

from dataclasses import dataclass, field

CAPTION_TOKENS = 400  # a Captioner caption of a 30 s clip runs about this long
CORPUS_S = 10 * 3600.0


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
    loops: str | None = None  # queue runs with looping captions: their share, and where they end


@dataclass
class Report:
    versions: dict
    device: str
    model: dict
    runs: list[Run] = field(default_factory=list)
    tokenise_ms_per_clip: float | None = None  # host CPU per clip, hidden by the pipeline's tokeniser thread
    pipeline_auto: dict | None = None  # GPU: what `--batch-size auto` picks for a caption stage on this GPU


def caption_speed(batch: int, clip_s: float, prefill_s: float, step_s: float) -> float:
    """Audio seconds per wall second when a batch of clips is prefilled and decoded CAPTION_TOKENS steps."""
    return batch * clip_s / (prefill_s + CAPTION_TOKENS * step_s)


def significant(value: float, digits: int = 3) -> float:
    # Rounding to decimals would print a slow CPU run's 0.04x realtime as 0.0.
    return float(f"{value:.{digits}g}")


def corpus_speed(x_realtime: float, warmup_s: float) -> float:
    """x realtime over a 10-hour corpus when `warmup_s` is paid once (compiled graphs are reused)."""
    return CORPUS_S / (CORPUS_S / x_realtime + warmup_s)


def print_table(runs: list[Run]) -> None:
    header = ("decoder", "batch", "clips", "cache", "ms/step", "tok/s", "x realtime", "warm-up s", "x rt 10 h",
              "peak GiB", "slot use", "tok/step", "clips/kstep", "continued", "loops", "status")
    print(" | ".join(header))
    for r in runs:
        cells = (r.decoder, r.batch, r.clips, r.cache_len, r.decode_ms_per_step, r.tok_per_s, r.x_realtime, r.warmup_s, r.x_realtime_10h,
                 r.peak_gib, r.slot_use, r.tok_per_step, r.clips_per_kstep, r.continued, r.loops, r.status)
        print(" | ".join("-" if c is None else str(c) for c in cells), flush=True)
