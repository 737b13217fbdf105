"""Fixed-shape decoding for the Qwen3-Omni thinker: static KV cache, grouped-GEMM experts, CUDA graphs.

Why not plain `generate` on a GPU: for decoding, transformers switches the MoE
experts from `grouped_mm` to `batched_mm` (`_optimize_model_for_decode`), which
gathers a copy of an expert's weights for every (token, expert) pair (the
`aten::index` + skinny `bmm` of the issue's profile), and every step pays
Python and kernel launches across 48 layers plus host syncs. This engine
- keeps `grouped_mm`: each active expert's weights are read once per step;
- decodes into a `StaticCache` whose shape comes from a few (batch, length)
  buckets, so one compiled CUDA graph (`torch.compile(mode="reduce-overhead")`,
  CUDA only) serves every batch of a corpus that falls in that bucket;
- calls the text model directly for a step (embed -> 48 layers -> lm_head on
  one position), skipping the multimodal merge and its host syncs, and asks
  the device "is everyone done?" only every `sync_every` steps;
- attends with the query heads packed onto their key/value head
  (model/decode_attention.py): compiled, transformers' sdpa would copy the
  whole cache once per query head of a group, every layer, every step.

It reproduces plain `generate`: same 4-row (text + M-RoPE) positions, same
padding mask, same logits processors; with greedy decoding the tokens are the
same (tests/model/test_decode_engine.py). Sampling uses the same warpers but
draws over the bucket-padded batch, so sampled tokens differ from `generate`'s.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .batch_sizing import bucket_up, power_of_two_buckets, round_up
from .compiled_step import CompiledOrEager
from .decode_attention import packed_decode_attention
from .loop_stop import looping_now

if TYPE_CHECKING:
    import torch

    from .generation import DecodingOptions


@dataclass(frozen=True)
class EngineOptions:
    compile: bool | None = None  # CUDA graphs via torch.compile; None: on CUDA only (CPU compiles are slow and gain little)
    length_quantum: int = 256  # the static cache length is prompt + cap rounded up to this
    min_cache_len: int = 0  # a stage's bound (longest prompt + cap): every call then shares one compiled shape
    max_batch: int = 256  # batches are padded to the next power of two up to this
    sync_every: int = 8  # steps between "all finished?" checks, each one a host sync
    experts: str = "grouped_mm"  # the MoE path while decoding ("batched_mm" is what plain generate switches to)
    kept_shapes: int = 2  # static caches (and their graphs' inputs) kept alive between calls


@dataclass
class DecodedBatch:
    """Per input row: the generated tokens (end-of-turn included, pad after it) and their raw log-probs."""

    tokens: "torch.Tensor"  # [rows, steps] int64, on the CPU
    logprobs: "torch.Tensor"  # [rows, steps] float32, on the CPU
    padded_batch: int  # the bucket the rows ran in
    cache_len: int
    prefill_s: float
    decode_s: float


class _ShapeSlot:
    """A static cache and the fixed-address mask buffer of one (batch, length) bucket."""

    def __init__(self, text_config, batch: int, cache_len: int, device):
        import torch
        from transformers import StaticCache

        self.cache = StaticCache(config=text_config, max_cache_len=cache_len)
        self.mask = torch.ones(batch, cache_len, dtype=torch.long, device=device)

    def reset(self, prompt_mask) -> None:
        self.cache.reset()
        self.mask.fill_(1)
        self.mask[:, :prompt_mask.shape[1]].copy_(prompt_mask)


class StaticDecoder:
    """Decodes batches of prepared thinker inputs with a static cache; keep one per loaded model."""

    def __init__(self, thinker, options: EngineOptions = EngineOptions()):
        self.thinker = thinker
        self.options = options
        self.device = thinker.device
        use_compile = options.compile if options.compile is not None else self.device.type == "cuda"
        self._slots: OrderedDict[tuple[int, int], _ShapeSlot] = OrderedDict()
        step = lambda *args: text_step(self.thinker, *args)  # noqa: E731
        self._step = CompiledOrEager(step, mode="reduce-overhead") if use_compile else step
        self.compiled = use_compile

    def release(self) -> None:
        """Drop every static cache (after an out-of-memory error, or before the model goes)."""
        self._slots.clear()

    def shape_for(self, rows: int, prompt_len: int, max_new_tokens: int) -> tuple[int, int]:
        """The (batch, cache length) bucket a call runs in."""
        batch = bucket_up(rows, power_of_two_buckets(max(self.options.max_batch, rows)))
        return batch, round_up(max(prompt_len + max_new_tokens, self.options.min_cache_len), self.options.length_quantum)

    def decode(self, inputs: dict, decoding: "DecodingOptions", eos_ids: list[int], pad_id: int) -> DecodedBatch:
        """Prefill then decode up to `decoding.max_new_tokens`; `eos_ids=[]` forces the full length (benchmarks)."""
        import torch

        rows, prompt_len = inputs["input_ids"].shape
        batch, cache_len = self.shape_for(rows, prompt_len, decoding.max_new_tokens)
        padded = _pad_rows(inputs, batch)
        processors = logits_processors(decoding)
        with (torch.inference_mode(), _experts(self.thinker, self.options.experts),
              packed_decode_attention(self.thinker.config.get_text_config())):
            slot = self._slot(batch, cache_len)  # its tensors are inference tensors: made and reset in this mode
            slot.reset(padded["attention_mask"])
            started = time.perf_counter()
            positions, logits = self._prefill(padded, slot)
            _synchronize(self.device)  # honest timings: kernels are asynchronous
            prefill_s = time.perf_counter() - started
            if decoding.do_sample:
                torch.manual_seed(decoding.seed)
            tokens, logprobs = self._decode_loop(padded["input_ids"], positions, logits, slot, processors,
                                                 decoding, eos_ids, pad_id)
            _synchronize(self.device)
            decode_s = time.perf_counter() - started - prefill_s
        return DecodedBatch(tokens=tokens[:rows].cpu(), logprobs=logprobs[:rows].float().cpu(), padded_batch=batch,
                            cache_len=cache_len, prefill_s=prefill_s, decode_s=decode_s)

    def _slot(self, batch: int, cache_len: int) -> _ShapeSlot:
        key = (batch, cache_len)
        if key in self._slots:
            self._slots.move_to_end(key)
            return self._slots[key]
        while len(self._slots) >= max(1, self.options.kept_shapes):
            self._slots.popitem(last=False)
        slot = _ShapeSlot(self.thinker.config.get_text_config(), batch, cache_len, self.device)
        self._slots[key] = slot
        return slot

    def _prefill(self, inputs: dict, slot: _ShapeSlot):
        """The prompt (audio merged in) through the thinker into the cache; eager, since its shape varies."""
        positions = prompt_positions(self.thinker, inputs)
        model_inputs = {k: v for k, v in inputs.items() if k != "attention_mask"}
        hidden = self.thinker.model(**model_inputs, attention_mask=slot.mask, position_ids=positions,
                                    past_key_values=slot.cache, use_cache=True).last_hidden_state
        # Only the last position's logits: the full [batch, prompt, vocab] tensor is gigabytes at 30B shapes.
        return positions, self.thinker.lm_head(hidden[:, -1]).float()

    def _decode_loop(self, prompt_ids, positions, logits, slot, processors, decoding, eos_ids, pad_id):
        import torch

        batch = prompt_ids.shape[0]
        steps = decoding.max_new_tokens
        device = prompt_ids.device
        eos = torch.tensor(eos_ids or [-1], device=device)
        tokens = torch.full((batch, steps), pad_id, dtype=torch.long, device=device)
        logprobs = torch.zeros(batch, steps, dtype=torch.float32, device=device)
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        next_positions = positions[..., -1:] + 1
        history = prompt_ids
        done_steps = 0
        for step in range(steps):
            chosen = choose_tokens(logits, history, processors, decoding.do_sample)
            chosen = torch.where(finished, torch.full_like(chosen, pad_id), chosen)  # as generate: pad once finished
            logprobs[:, step] = torch.log_softmax(logits, dim=-1).gather(1, chosen[:, None]).squeeze(1)
            tokens[:, step] = chosen
            finished |= torch.isin(chosen, eos)
            done_steps = step + 1
            at_sync = done_steps % self.options.sync_every == 0
            if at_sync and decoding.loop_stop and done_steps >= decoding.loop_stop.min_tokens:
                finished |= looping_now(tokens[:, :done_steps], torch.full_like(finished, done_steps, dtype=torch.long),
                                        decoding.loop_stop)
            if done_steps == steps or (at_sync and bool(finished.all())):
                break
            if processors:  # only the repetition penalty and friends read the history
                history = torch.cat([history, chosen[:, None]], dim=1)
            if self.compiled:
                torch.compiler.cudagraph_mark_step_begin()
            logits = self._step(chosen[:, None], next_positions, slot.mask, slot.cache)
            next_positions = next_positions + 1
        return tokens[:, :done_steps], logprobs[:, :done_steps]


def text_step(thinker, token_ids, position_ids, attention_mask, cache):
    """One decode step through the text model alone (no multimodal merge, no host syncs): fp32 logits."""
    hidden = thinker.model.language_model(input_ids=token_ids, position_ids=position_ids, attention_mask=attention_mask,
                                          past_key_values=cache, use_cache=True).last_hidden_state
    return thinker.lm_head(hidden[:, -1]).float()


def prompt_positions(thinker, inputs: dict):
    """The [4, batch, prompt] position ids `generate` builds: text row, then M-RoPE (time, height, width) rows."""
    import torch

    mask = inputs["attention_mask"]
    text = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    feature_mask = inputs.get("feature_attention_mask")
    audio_lengths = feature_mask.sum(-1) if feature_mask is not None else None
    rope, _ = thinker.get_rope_index(inputs["input_ids"], None, None, mask, False, audio_lengths, None)
    return torch.cat([text[None].to(rope.dtype), rope], dim=0)


def logits_processors(decoding: "DecodingOptions"):
    """The processors `generate` applies for these options, in its order (penalty, then warpers)."""
    from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                              TopKLogitsWarper, TopPLogitsWarper)

    processors = LogitsProcessorList()
    if decoding.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(decoding.repetition_penalty))
    if decoding.do_sample:
        if decoding.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(decoding.temperature))
        if decoding.top_k:
            processors.append(TopKLogitsWarper(decoding.top_k))
        if decoding.top_p < 1.0:
            processors.append(TopPLogitsWarper(decoding.top_p))
    return processors


def choose_tokens(logits, history, processors, do_sample: bool):
    import torch

    scores = processors(history, logits) if processors else logits
    if do_sample:
        return torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
    return scores.argmax(dim=-1)


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _pad_rows(inputs: dict, batch: int) -> dict:
    """Fill the bucket with copies of the first row: real inputs, so no row is all padding; their output is dropped."""
    import torch

    rows = inputs["input_ids"].shape[0]
    if rows == batch:
        return inputs
    extra = batch - rows
    return {k: torch.cat([v, v[:1].expand(extra, *v.shape[1:])], dim=0) for k, v in inputs.items()}


class _experts:
    """Context manager: the thinker's MoE experts implementation for the duration of a call."""

    def __init__(self, thinker, implementation: str):
        self.thinker = thinker
        self.implementation = implementation
        self.previous = None

    def __enter__(self):
        self.previous = self.thinker.get_experts_implementation()
        if self.previous.get("text_config", self.previous.get("")) != self.implementation:
            self.thinker.set_experts_implementation({**self.previous, "text_config": self.implementation})
        else:
            self.previous = None
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            self.thinker.set_experts_implementation(self.previous)
        return False
