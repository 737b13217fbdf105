"""Continuous refill: a fixed set of decode slots, each taking the next segment as soon as its caption ends.

Why: in a fixed batch every row waits for the longest caption, so with
captions of 200 to 600 tokens a third of the slot-steps decode padding. Here a
slot whose row ended takes a new segment while the others go on, so the GPU
keeps decoding real rows until the queue runs dry.

How, inside transformers + torch:
- `SlotCache` (model/slot_cache.py) writes each row at its own position, so a
  row can start a new sequence while its neighbours continue; each row's mask
  says which positions hold its own tokens (not a former occupant's);
- new segments are prefilled eagerly as one group (their own left-padded
  batch into a DynamicCache); keys and values are copied into the free rows;
- a decode step is the static engine's (`decode_engine.text_step`: grouped_mm
  experts, compiled with CUDA graphs on CUDA), with a 4D mask from the per-row
  mask, since rows are at different positions;
- finished rows are found every `sync_every` steps (one host sync), and a
  prefill, which reads the experts' weights once whatever its size, waits
  until `refill_fraction` of the slots is free (or the rest of the queue fits);
  it runs in chunks of at most `prefill_rows` rows, so its activations are
  paid for a chunk, not for every slot, and the memory goes to more slots;
- with `slot_cache_len`, a slot holds the prompt and typical captions, not
  the cap: more slots in the same memory. A row that fills its slot's cache
  goes on after the queue in a full-length round over the same storage
  (fewer slots): its prompt is prefilled again and the tokens it made are fed
  after it, so it ends as it would have in one cache.

Each row gets the tokens plain `generate` gives it alone: greedy tokens are
the same (tests/model/test_refill_engine.py); its repetition-penalty history
is its own prompt and output, without the pad tokens of a padded batch.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from .batch_sizing import round_up
from .compiled_step import CompiledOrEager
from .decode_attention import packed_decode_attention, slot_attention_mask
from .decode_engine import _experts, _synchronize, choose_tokens, logits_processors, prompt_positions, text_step
from .loop_stop import looping_now
from .refill_plan import full_length_slots, prefill_group, slot_room
from .row_batch import Row, batch_rows, to_device
from .slot_cache import SlotCache, SlotStorage, slot_cache_numel
from .slot_state import SlotState

if TYPE_CHECKING:
    import torch

    from .generation import DecodingOptions


KEPT_SHAPES = 2  # cache shapes a decoder keeps: its slots' and the full-length round's


@dataclass(frozen=True)
class RefillOptions:
    compile: bool | None = None  # CUDA graphs via torch.compile; None: on CUDA only
    length_quantum: int = 256  # the cache length is the longest prompt + cap, rounded up to this
    min_cache_len: int = 0  # a stage's bound (longest prompt + cap): every call then shares one compiled shape
    sync_every: int = 8  # steps between looks at which rows ended, each one a host sync
    refill_fraction: float = 0.125  # prefill once this share of the slots is free (or the queue's rest fits)
    experts: str = "grouped_mm"
    queue_batches: int = 8  # the pipeline hands over this many batches of segments per call
    prefill_rows: int | None = None  # rows prefilled in one forward (activation memory); None: every free slot
    # Keep all `slots` even for fewer rows (a group's last call): one cache shape, one compiled graph per stage,
    # at nearly no cost where a step's time is the experts' weights. None: when compiled.
    fixed_slots: bool | None = None
    # A slot's cache holds at most this many positions (rounded up to the quantum; more slots in the same
    # memory). A row that fills it continues after the queue in a cache of its full length, through fewer
    # slots in the same memory: same tokens. None: every slot holds the longest prompt + cap.
    slot_cache_len: int | None = None


@dataclass
class RefillResult:
    """Per input row (input order): generated tokens (end-of-turn included) and their raw log-probs."""

    tokens: list["torch.Tensor"]
    logprobs: list["torch.Tensor"]
    slots: int
    cache_len: int
    steps: int = 0
    prefills: int = 0
    busy_slot_steps: int = 0  # slot-steps that produced a token of an unfinished row
    slot_steps: int = 0  # steps x slots, summed over the rounds
    continued: int = 0  # rows that filled their slot's cache and went on in a full-length one
    loop_stopped: set[int] = field(default_factory=set)  # rows stopped because their tokens loop
    long_slots: int = 0  # the slots of that full-length round (0: none ran)
    long_cache_len: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0

    @property
    def slot_use(self) -> float:
        """The share of slot-steps that decoded a real row (1.0: no slot ever idled)."""
        return self.busy_slot_steps / max(1, self.slot_steps)


class RefillDecoder:
    """Decodes a queue of prepared single rows through a fixed number of slots; keep one per loaded model."""

    def __init__(self, thinker, options: RefillOptions = RefillOptions()):
        self.thinker = thinker
        self.options = options
        self.device = thinker.device
        self.text_config = thinker.config.get_text_config()
        if self.text_config._attn_implementation not in ("sdpa", "eager"):
            raise ValueError(f"the refill engine needs sdpa or eager attention, not "
                             f"{self.text_config._attn_implementation!r}")
        use_compile = options.compile if options.compile is not None else self.device.type == "cuda"
        step = lambda *args: text_step(self.thinker, *args)  # noqa: E731
        self._step = CompiledOrEager(step, mode="reduce-overhead", dynamic=False) if use_compile else step
        self.compiled = use_compile
        self._storage: SlotStorage | None = None
        self._caches: dict[tuple[int, int], SlotCache] = {}  # (slots, cache_len) -> a cache viewing the storage

    def release(self) -> None:
        self._caches, self._storage = {}, None

    @property
    def cache_shapes(self) -> list[tuple[int, int]]:
        """(slots, cache length) of the caches kept, oldest first."""
        return list(self._caches)

    @property
    def fixed_slots(self) -> bool:
        """Whether a call keeps every slot for fewer rows (its cache shape, its compiled graph)."""
        return self.options.fixed_slots if self.options.fixed_slots is not None else self.compiled

    def cache_len_for(self, rows: list[Row], caps: list[int]) -> int:
        """The cache length that holds every row's prompt and cap (at least the stage's bound)."""
        longest = max(row["input_ids"].shape[1] for row in rows)
        return round_up(max(longest + max(caps), self.options.min_cache_len), self.options.length_quantum)

    def slot_cache_len(self, full_len: int) -> int:
        """A slot's cache length for rows that need `full_len`: the `slot_cache_len` bound where it is shorter."""
        bound = self.options.slot_cache_len
        return full_len if bound is None else min(full_len, round_up(bound, self.options.length_quantum))

    def decode_rows(self, rows: list[Row], decoding: "DecodingOptions", eos_ids: list[int], pad_id: int,
                    slots: int, caps: list[int] | None = None,
                    prefill_context: Callable[[list[int]], object] = lambda indices: nullcontext()) -> RefillResult:
        """Every row through at most `slots` slots; `caps`: per-row token caps (default `max_new_tokens`).

        `prefill_context(indices)`: entered around each group's prefill (the AuT windows of those clips).
        `eos_ids=[]` decodes every row to its cap (benchmarks).
        """
        import torch

        caps = list(caps) if caps is not None else [decoding.max_new_tokens] * len(rows)
        full_len = self.cache_len_for(rows, caps)
        cache_len = self.slot_cache_len(full_len)
        slots = max(1, slots if self.fixed_slots else min(slots, len(rows)))
        result = RefillResult(tokens=[None] * len(rows), logprobs=[None] * len(rows), slots=slots,
                              cache_len=cache_len)
        # A row goes first where its prompt leaves its slot room for two tokens (the next one, fed, and the
        # one after); a longer prompt waits for the full-length round, with the rows that outgrew a slot.
        fits = [row["input_ids"].shape[1] < cache_len for row in rows]
        queue, later = [i for i, ok in enumerate(fits) if ok], [i for i, ok in enumerate(fits) if not ok]
        round_len = cache_len
        if not queue:
            queue, later, round_len = later, [], full_len
        prefixes: dict[int, tuple] = {}  # row -> (tokens, logprobs) it made before it outgrew a cache
        left = list(caps)
        started = time.perf_counter()
        with (torch.inference_mode(), _experts(self.thinker, self.options.experts),
              packed_decode_attention(self.text_config)):
            if decoding.do_sample:
                torch.manual_seed(decoding.seed)
            eos = torch.tensor(eos_ids or [-1], device=self.device)
            while queue:
                round_slots = slots
                if round_len > cache_len:  # over the same storage: fewer slots, the same memory
                    round_slots = full_length_slots(slots, cache_len, full_len)
                    round_slots = round_slots if self.fixed_slots else min(round_slots, len(queue))
                    result.long_slots, result.long_cache_len = max(result.long_slots, round_slots), round_len
                self._decode_round(queue, rows, prefixes, left, decoding, eos, pad_id, round_slots, round_len,
                                   result, prefill_context)
                outgrown = [i for i in queue if len(result.tokens[i]) < left[i]
                            and int(result.tokens[i][-1]) not in eos_ids and i not in result.loop_stopped]
                for i in outgrown:
                    tokens, logprobs = prefixes.get(i, (result.tokens[i][:0], result.logprobs[i][:0]))
                    prefixes[i] = (torch.cat([tokens, result.tokens[i]]), torch.cat([logprobs, result.logprobs[i]]))
                    left[i] -= len(result.tokens[i])
                queue, later, round_len = later + outgrown, [], full_len
            _synchronize(self.device)
        for i, (tokens, logprobs) in prefixes.items():
            result.tokens[i] = torch.cat([tokens, result.tokens[i]])
            result.logprobs[i] = torch.cat([logprobs, result.logprobs[i]])
        result.continued = len(prefixes)
        result.decode_s = time.perf_counter() - started - result.prefill_s
        return result

    def _decode_round(self, queue: list[int], rows: list[Row], prefixes: dict, caps: list[int],
                      decoding: "DecodingOptions", eos, pad_id: int, slots: int, cache_len: int,
                      result: RefillResult, prefill_context) -> None:
        """Rows `queue` through `slots` slots of `cache_len` positions, each to its cap, its end of turn, or
        the end of its slot's cache; their tokens (made in this round) go to `result`."""
        import torch

        def prompt_len(i: int) -> int:
            return rows[i]["input_ids"].shape[1]

        def fed_len(i: int) -> int:
            return len(prefixes[i][0]) if i in prefixes else 0

        # Longest prompts first: groups of similar length pad little, and long rows do not end the run alone.
        queue = sorted(queue, key=lambda i: (-prompt_len(i) - fed_len(i), i))
        # `prefill_rows` is sized for the call's longest prompt; rows that come back with their tokens are
        # longer, so a chunk is bounded in positions too.
        longest = max(row["input_ids"].shape[1] for row in rows)
        prefill_tokens = self.options.prefill_rows * longest if self.options.prefill_rows else None
        processors = logits_processors(decoding)
        cache = self._slot_cache(slots, cache_len)
        state = SlotState.empty(slots, cache_len, min(cache_len, max(caps[i] for i in queue)), bool(processors),
                                self.thinker.lm_head.out_features, self.device)
        busy = torch.zeros((), dtype=torch.long, device=self.device)
        steps = 0
        while True:
            if steps % self.options.sync_every == 0 or not any(h is not None for h in state.holder):
                if decoding.loop_stop:
                    looped = ~state.finished & looping_now(state.tokens, state.count, decoding.loop_stop)
                    state.finished |= looped
                    state.looped |= looped
                self._collect(state, result)
                free = [s for s, h in enumerate(state.holder) if h is None]
                wanted = max(1, math.ceil(self.options.refill_fraction * slots))
                if queue and (len(free) >= min(wanted, len(queue)) or len(free) == slots):
                    chunk = self.options.prefill_rows or len(free)
                    while free and queue:
                        group = prefill_group(queue, min(chunk, len(free)), prompt_len, fed_len, caps, cache_len,
                                              prefill_tokens)
                        queue = [i for i in queue if i not in group]
                        result.prefill_s += self._refill(state, cache, free[:len(group)], group, rows, prefixes,
                                                         caps, pad_id, prefill_context)
                        free = free[len(group):]
                        result.prefills += 1
                if all(h is None for h in state.holder):
                    break
            busy += self._choose(state, processors, decoding.do_sample, eos)
            steps += 1
            self._advance(state, cache)
        result.steps += steps
        result.slot_steps += steps * slots
        result.busy_slot_steps += int(busy)

    def _slot_cache(self, slots: int, cache_len: int) -> SlotCache:
        """The cache of this shape, kept across calls (a compiled graph per shape). Every shape views one
        storage; a shape larger than it replaces it, and every cache with it."""
        shape = (slots, cache_len)
        if shape not in self._caches:
            numel, dtype = slot_cache_numel(self.text_config, slots, cache_len), self.thinker.dtype
            if self._storage is None or not self._storage.holds(numel, dtype, self.device):
                self.release()  # the old buffers go before the new ones are allocated
                self._storage = SlotStorage(self.text_config.num_hidden_layers, numel, dtype, self.device)
            if len(self._caches) >= KEPT_SHAPES:
                self._caches.pop(next(iter(self._caches)))
            self._caches[shape] = SlotCache(self.text_config, slots, cache_len, dtype, self.device, self._storage)
        return self._caches[shape]

    def _collect(self, state: SlotState, result: RefillResult) -> None:
        """Hand the rows that ended to the result and free their slots (one host sync)."""
        import torch

        finished, looped = state.finished.tolist(), state.looped.tolist()
        counts = state.count.tolist()
        for slot, row in enumerate(state.holder):
            if row is not None and finished[slot]:
                if looped[slot]:
                    result.loop_stopped.add(row)
                # A copy even on a CPU: the slot's buffers are overwritten by its next row.
                result.tokens[row] = state.tokens[slot, :counts[slot]].to("cpu", copy=True)
                result.logprobs[row] = state.logprobs[slot, :counts[slot]].to("cpu", torch.float32, copy=True)
                state.holder[slot] = None

    def _refill(self, state: SlotState, cache: SlotCache, slot_ids: list[int], group: list[int], rows: list[Row],
                prefixes: dict, caps: list[int], pad_id: int, prefill_context) -> float:
        """Prefill rows `group` as one batch into slots `slot_ids`; returns the seconds it took. A row in
        `prefixes` outgrew a cache: the tokens it made so far follow its prompt."""
        import torch
        from transformers import DynamicCache

        started = time.perf_counter()
        batch = to_device(batch_rows([rows[i] for i in group], pad_id), self.device, self.thinker.dtype)
        with prefill_context(group):
            positions = prompt_positions(self.thinker, batch)
            prefilled = DynamicCache(config=self.text_config)
            model_inputs = {k: v for k, v in batch.items() if k != "attention_mask"}
            hidden = self.thinker.model(**model_inputs, attention_mask=batch["attention_mask"], position_ids=positions,
                                        past_key_values=prefilled, use_cache=True).last_hidden_state[:, -1]
        token_ids, mask = batch["input_ids"], batch["attention_mask"].bool()
        if any(i in prefixes for i in group):
            hidden, positions, token_ids, mask = self._feed_prefixes(
                prefilled, [prefixes[i][0] if i in prefixes else None for i in group], hidden, positions,
                token_ids, mask)
        length = token_ids.shape[1]
        ids = torch.tensor(slot_ids, device=self.device)
        cache.load_rows(ids, prefilled, length)
        state.mask[ids] = False
        state.mask[ids, :length] = mask
        if state.next_pos.dtype != positions.dtype:  # get_rope_index's dtype, as the static engine feeds it
            state.next_pos = state.next_pos.to(positions.dtype)
        state.next_pos[:, ids, 0] = positions[:, :, -1] + 1
        if state.history is not None:
            # Unused positions repeat a token the row already has, so the penalty sees only its own tokens.
            own = token_ids.gather(1, mask.long().argmax(1, keepdim=True))
            state.history[ids] = own
            state.history[ids, :length] = torch.where(mask, token_ids, own)
        state.count[ids] = 0
        # A row stops where its slot's cache ends: the next token written there is its last (see decode_rows).
        room = slot_room(cache.cache_len, length)
        state.caps[ids] = torch.tensor([min(caps[i], room) for i in group], device=self.device)
        state.finished[ids] = False
        state.looped[ids] = False
        state.logits[ids] = self.thinker.lm_head(hidden).float()
        for slot, row in zip(slot_ids, group):
            state.holder[slot] = row
        _synchronize(self.device)
        return time.perf_counter() - started

    def _feed_prefixes(self, prefilled, prefixes: list, hidden, positions, token_ids, mask):
        """The tokens rows made before they outgrew a cache, fed after their prompts in one forward at the
        positions decode steps gave them (right-aligned: a fed row ends on its last token; a row with none keeps
        its prompt's last hidden state). Returns last hidden states, positions, token ids and mask."""
        import torch
        import torch.nn.functional as F

        width = max(len(p) for p in prefixes if p is not None)
        fed = [p.to(self.device) if p is not None else token_ids.new_zeros(0) for p in prefixes]
        fed_ids = torch.stack([F.pad(p, (width - len(p), 0), value=0) for p in fed])
        real = torch.stack([F.pad(torch.ones(len(p), dtype=torch.bool, device=self.device), (width - len(p), 0))
                            for p in fed])
        fed_positions = positions[:, :, -1:] + real.long().cumsum(-1)[None].to(positions.dtype)
        mask = torch.cat([mask, real], dim=1)
        out = self.thinker.model.language_model(input_ids=fed_ids, position_ids=fed_positions,
                                                attention_mask=mask.long(), past_key_values=prefilled,
                                                use_cache=True).last_hidden_state[:, -1]
        has_prefix = torch.tensor([p is not None for p in prefixes], device=self.device)
        return (torch.where(has_prefix[:, None], out, hidden), torch.cat([positions, fed_positions], dim=2),
                torch.cat([token_ids, fed_ids], dim=1), mask)

    def _choose(self, state: SlotState, processors, do_sample: bool, eos) -> "torch.Tensor":
        """Pick every live row's next token and record it; returns how many rows were live."""
        import torch

        chosen = choose_tokens(state.logits, state.history, processors, do_sample)
        live = ~state.finished
        rows = torch.arange(chosen.shape[0], device=chosen.device)
        at = state.count.clamp(max=state.tokens.shape[1] - 1)
        logprob = torch.log_softmax(state.logits, dim=-1).gather(1, chosen[:, None]).squeeze(1)
        state.tokens[rows, at] = torch.where(live, chosen, state.tokens[rows, at])
        state.logprobs[rows, at] = torch.where(live, logprob, state.logprobs[rows, at])
        state.count += live
        state.finished |= live & (torch.isin(chosen, eos) | (state.count >= state.caps))
        state.chosen = chosen
        return live.sum()

    def _advance(self, state: SlotState, cache: SlotCache) -> None:
        """Feed every slot's chosen token through one decode step (ended rows too: their output is ignored)."""
        import torch

        write_at = cache.write_pos
        state.mask[cache.row_index, write_at] = True
        if state.history is not None:
            state.history[cache.row_index, write_at] = state.chosen
        if self.compiled:
            torch.compiler.cudagraph_mark_step_begin()
        attention = slot_attention_mask(state.mask, self.text_config._attn_implementation, self.thinker.dtype)
        state.logits = self._step(state.chosen[:, None], state.next_pos, attention, cache)
        write_at.add_(1).clamp_(max=cache.cache_len - 1)  # an ended row keeps stepping until its slot is refilled
        state.next_pos += 1

