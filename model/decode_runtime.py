"""How one loaded model decodes during a stage: plain `generate` or an engine, and the live batch size.

`--decoder auto` picks the refill engine on CUDA and plain `generate` on a
CPU: on a CPU there are no kernel launches to save and a static cache makes
every step attend over the whole bucket length, so plain is as fast or
faster (bench/RESULTS.md). `static` decodes fixed batches with the same
compiled step; `refill` keeps `batch size` slots busy, taking the next
segment into a slot as soon as its caption ends. `--batch-size auto` sizes batches from the free
GPU memory after loading (model/batch_sizing.py); on a CPU it means 8. The refill engine prefills in chunks,
so its slots are sized with one chunk's activations, not every slot's: twice the slots of a fixed batch on an
H100 for captions (bench/RESULTS.md). Its slots need not be powers of two, and hold the prompt and half the
cap where that buys more of them; the rare caption that fills its slot goes on in a full-length round with
the same tokens: 112 slots instead of 64 on that H100.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .batch_sizing import BatchLimit, MemoryModel, auto_batch_size, prefill_rows_that_fit, round_up, slot_counts
from .decode_engine import EngineOptions, StaticDecoder
from .loading import OmniModel
from .refill_engine import RefillDecoder, RefillOptions

DECODERS = ("auto", "plain", "static", "refill")
CPU_AUTO_BATCH = 8
AUDIO_TOKENS_PER_S = 13  # AuT: 13 tokens per second of audio
PROMPT_TEMPLATE_TOKENS = 64  # chat template, audio markers and a short instruction
# `auto` sizes the refill engine's slots with this many rows' prefill activations; the prefill chunk then takes
# what memory the slots leave. Slots are what decoding speed scales with; a smaller prefill chunk only reads
# the experts' weights once more per chunk.
MIN_PREFILL_ROWS = 4
# `auto` gives a refill slot the prompt and this share of the cap, where that buys more slots than the whole
# cap: captions end long before the cap, and the rare row that fills its slot goes on in a full-length round
# (model/refill_engine.py), with the same tokens. An H100 caption stage: 112 slots instead of 64.
SLOT_CAP_SHARE = 0.5


@dataclass
class DecodeRuntime:
    """The engine (None: transformers' `generate`) and the batch limit an OOM lowers, for one loaded model."""

    decoder: StaticDecoder | RefillDecoder | None
    limit: BatchLimit

    @property
    def segments_per_call(self) -> int:
        """How many segments the pipeline hands over at once: the refill engine wants a queue to refill from."""
        if isinstance(self.decoder, RefillDecoder):
            return self.limit.size * self.decoder.options.queue_batches
        return self.limit.size

    def in_flight(self, count: int) -> int:
        """How many of `count` segments handed over in one call decode at the same time (the memory in use):
        the refill engine's slots, all of them when it keeps its shape for fewer rows."""
        if isinstance(self.decoder, RefillDecoder):
            return self.limit.size if self.decoder.fixed_slots else min(count, self.limit.size)
        return count

    def free_after_oom(self) -> None:
        """Drop the engine's static caches and the allocator's free blocks before a smaller retry."""
        import gc

        import torch

        if self.decoder is not None:
            self.decoder.release()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def decoder_kind(omni: OmniModel, choice: str) -> str:
    """plain, static or refill: what `--decoder` `choice` means for this model on its device."""
    if choice not in DECODERS:
        raise ValueError(f"--decoder {choice!r}: choose one of {', '.join(DECODERS)}")
    if omni.family.name != "qwen3-omni":
        if choice in ("static", "refill"):
            raise ValueError(f"--decoder {choice}: the engines are built for Qwen3-Omni's MoE thinker, not "
                             f"{omni.family.title}; use --decoder plain (or auto)")
        return "plain"
    if choice == "auto":
        return "refill" if omni.device.startswith("cuda") else "plain"
    return choice


def make_decoder(omni: OmniModel, choice: str, options: EngineOptions = EngineOptions(),
                 refill: RefillOptions = RefillOptions()) -> StaticDecoder | RefillDecoder | None:
    kind = decoder_kind(omni, choice)
    if kind == "static":
        return StaticDecoder(omni.model.thinker, options)
    return RefillDecoder(omni.model.thinker, refill) if kind == "refill" else None


def prompt_tokens_for(max_audio_s: float, text_tokens: int = 0) -> int:
    """An upper bound on a segment prompt's length: its audio tokens plus the template."""
    return math.ceil(AUDIO_TOKENS_PER_S * max_audio_s) + PROMPT_TEMPLATE_TOKENS + text_tokens


def resolve_batch_size(batch_size: int | str, memory: MemoryModel, free_bytes: int | None, prompt_tokens: int,
                       max_new_tokens: int, length_quantum: int = EngineOptions.length_quantum,
                       max_batch: int = EngineOptions.max_batch) -> int:
    """A fixed batch (static engine, plain `generate`): an int stays; `auto` sizes from `free_bytes` (None: no
    GPU, the CPU default), every row's prefill activations counted."""
    if batch_size != "auto":
        return int(batch_size)
    if free_bytes is None:
        return CPU_AUTO_BATCH
    cache_len = round_up(prompt_tokens + max_new_tokens, length_quantum)
    return auto_batch_size(free_bytes, memory, prompt_tokens, cache_len, max_batch=max_batch)


def free_gpu_bytes(device: str) -> int | None:
    """Free memory on `device` plus what torch's allocator holds but does not use; None off CUDA."""
    import torch

    if not device.startswith("cuda"):
        return None
    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def decode_runtime(omni: OmniModel, decoder: str, batch_size: int | str, prompt_tokens: int, max_new_tokens: int,
                   free_bytes: Callable[[str], int | None] = free_gpu_bytes) -> DecodeRuntime:
    """The stage's runtime, sized after the model loaded (its weights are no longer free memory)."""
    import torch

    thinker = omni.model.thinker
    dtype_bytes = torch.empty((), dtype=thinker.dtype).element_size()
    memory = MemoryModel.from_text_config(thinker.config.get_text_config(), dtype_bytes)
    free = free_bytes(omni.device)
    bound = prompt_tokens + max_new_tokens  # one cache shape (one compiled graph) for the whole stage
    prefill_rows = slot_cache_len = None  # no GPU: no memory to share out, every free slot is prefilled at once
    if decoder_kind(omni, decoder) == "refill" and free is not None:
        if batch_size == "auto":
            size, slot_cache_len = refill_slots(free, memory, prompt_tokens, max_new_tokens)
        else:
            size = int(batch_size)
        cache_len = slot_cache_len or round_up(bound, RefillOptions.length_quantum)
        prefill_rows = prefill_rows_that_fit(free, memory, size, prompt_tokens, cache_len)
    else:
        size = resolve_batch_size(batch_size, memory, free, prompt_tokens, max_new_tokens)
    refill_options = RefillOptions(min_cache_len=bound, prefill_rows=prefill_rows, slot_cache_len=slot_cache_len)
    return DecodeRuntime(decoder=make_decoder(omni, decoder, EngineOptions(min_cache_len=bound), refill_options),
                         limit=BatchLimit(size))


def refill_slots(free_bytes: int, memory: MemoryModel, prompt_tokens: int, max_new_tokens: int,
                 max_batch: int = EngineOptions.max_batch, quantum: int = RefillOptions.length_quantum,
                 cap_share: float = SLOT_CAP_SHARE) -> tuple[int, int | None]:
    """`auto` for the refill engine: (slots, slot cache length), the length None where slots holding the
    prompt and `cap_share` of the cap would be no more than slots holding the whole cap."""
    def slots_of(cache_len: int) -> int:
        return auto_batch_size(free_bytes, memory, prompt_tokens, cache_len, prefill_rows=MIN_PREFILL_ROWS,
                               sizes=slot_counts(max_batch))

    full_len = round_up(prompt_tokens + max_new_tokens, quantum)
    short_len = round_up(prompt_tokens + math.ceil(cap_share * max_new_tokens), quantum)
    full, short = slots_of(full_len), slots_of(short_len)
    return (short, short_len) if short > full and short_len < full_len else (full, None)
