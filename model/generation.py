"""Batched generation over audio segments with the thinker, for every model family.

One call takes many segments with the same prompt and returns one result per
segment: left padding, per-row attention and feature masks (the processor's),
an explicit `thinker_max_new_tokens` (the library default of 1024 silently
truncates long captions), and the mean log-prob of the chosen tokens under the
raw model distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from .aut_windows import AutWindows
from .loading import OmniModel
from .loop_stop import LoopStop, LoopStopCriteria, first_loop_end
from .row_batch import Row, batch_rows, feature_lengths, to_device

if TYPE_CHECKING:
    from .decode_engine import StaticDecoder
    from .refill_engine import RefillDecoder

    Decoder = StaticDecoder | RefillDecoder

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Prompt:
    """One user turn: the audio, optionally followed by text, after an optional system message."""

    text: str | None = None
    system: str | None = None

    def to_messages(self, with_audio: bool = True) -> list[dict]:
        content: list[dict] = [{"type": "audio", "audio": "<segment>"}] if with_audio else []
        if self.text:
            content.append({"type": "text", "text": self.text})
        messages = [{"role": "system", "content": [{"type": "text", "text": self.system}]}] if self.system else []
        return messages + [{"role": "user", "content": content}]


@dataclass(frozen=True)
class DecodingOptions:
    max_new_tokens: int = 1024
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int = 0
    loop_stop: LoopStop | None = None  # None: a loop runs to the cap

    def generate_kwargs(self) -> dict:
        kwargs = {"do_sample": self.do_sample, "repetition_penalty": self.repetition_penalty}
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        return kwargs


@dataclass(frozen=True)
class GenerationResult:
    text: str
    token_ids: tuple[int, ...] = field(repr=False)
    num_tokens: int  # generated tokens, end-of-turn token excluded
    hit_token_cap: bool  # stopped by max_new_tokens, not by end of turn: the text is truncated
    mean_logprob: float | None
    loop_stopped: bool = False  # cut where its tokens began to loop (DecodingOptions.loop_stop)


class _LogProbRecorder:
    """Records log-softmax of the raw lm_head logits and, once each token is chosen, its log-prob.

    A forward hook sees the logits before any sampling warper (temperature,
    top-k/p), and a stopping criterion runs right after the token is appended:
    together they give the model's own probability of what was emitted.
    """

    def __init__(self):
        self._last = None
        self.steps: list = []

    def hook(self, _module, _inputs, logits):
        import torch

        self._last = torch.log_softmax(logits[:, -1, :].float(), dim=-1)
        return None

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        if self._last is not None:
            self.steps.append(self._last.gather(1, input_ids[:, -1:]).squeeze(1))
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def end_of_turn_ids(omni: OmniModel) -> list[int]:
    tokenizer = omni.processor.tokenizer
    configured = getattr(omni.model.config, "im_end_token_id", None)  # Qwen3 names it; Qwen2.5 does not
    ids = {configured} if configured is not None else set()
    for token in ("<|im_end|>", "<|endoftext|>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    return sorted(ids)


def prepare_rows(omni: OmniModel, audios: list[np.ndarray] | None, prompts: Prompt | list[Prompt]) -> list[Row]:
    """One tokenised input per segment (or per text prompt with `audios=None`), on the CPU, unpadded.

    Each clip goes through the processor alone: batched, the feature extractor zero-pads short clips
    before its STFT, so their last frame differs from the clip alone (reflect padding) and batch != single.
    """
    processor = omni.processor
    count = len(audios) if audios is not None else len(prompts)
    prompts = prompts if isinstance(prompts, list) else [prompts] * count
    texts = [processor.apply_chat_template(with_family_system(omni, p).to_messages(with_audio=audios is not None),
                                           add_generation_prompt=True, tokenize=False) for p in prompts]
    if audios is None:
        rows = [dict(processor(text=[text], return_tensors="pt")) for text in texts]
    else:
        shortest = _shortest_clip(processor)
        audios = [_padded_to(audio, shortest) for audio in audios]
        rows = [dict(processor(text=[text], audio=[audio], return_tensors="pt",
                               **omni.family.audio_processor_kwargs([audio])))
                for text, audio in zip(texts, audios)]
    for row in rows:
        row.pop("num_audio_tokens", None)
    return rows


def _shortest_clip(processor) -> int:
    """Fewest samples the feature extractor takes: its STFT reflect-pads n_fft/2 on each side, which
    needs more samples than that (a 6 ms click or a 0-sample recording would stop the whole run)."""
    return getattr(processor.feature_extractor, "n_fft", 400)


def _padded_to(audio: np.ndarray, samples: int) -> np.ndarray:
    """The clip followed by silence up to `samples`: the model hears the clip as it is, then nothing."""
    if len(audio) >= samples:
        return audio
    return np.concatenate([audio, np.zeros(samples - len(audio), dtype=audio.dtype)])


def prepare_inputs(omni: OmniModel, audios: list[np.ndarray] | None, prompts: Prompt | list[Prompt]) -> dict:
    """Tokenised, left-padded inputs on the model's device; with `audios=None` the prompts are text only."""
    return _on_device(omni, prepare_rows(omni, audios, prompts))


def _on_device(omni: OmniModel, rows: list[Row]) -> dict:
    return to_device(batch_rows(rows, omni.processor.tokenizer.pad_token_id), omni.device, omni.model.thinker.dtype)


def with_family_system(omni: OmniModel, prompt: Prompt) -> Prompt:
    """The prompt with the family's required system message where it brings none of its own."""
    if prompt.system or not omni.family.system_prompt:
        return prompt
    return replace(prompt, system=omni.family.system_prompt)


def generate_batch(omni: OmniModel, audios: list[np.ndarray], prompt: Prompt, decoding: DecodingOptions,
                   windows: AutWindows | None = None, decoder: "Decoder | None" = None,
                   slots: int | None = None) -> list[GenerationResult]:
    """Generate for each 16 kHz mono float32 segment; results are in input order.

    `windows` sets the AuT attention windows for this call (default: the model's own, 8 s).
    `decoder`: an engine (same results, faster on a GPU); None: transformers' `generate`.
    `slots`: with the refill engine, how many segments decode at once (default: all of them).
    """
    if not audios:
        return []
    return generate_rows(omni, prepare_rows(omni, audios, prompt), decoding, windows, decoder, slots)


def generate_text(omni: OmniModel, prompts: list[Prompt], decoding: DecodingOptions,
                  decoder: "Decoder | None" = None, slots: int | None = None) -> list[GenerationResult]:
    """Text-only generation (e.g. a recording summary from its timestamped captions), batched."""
    if not prompts:
        return []
    return generate_rows(omni, prepare_rows(omni, None, prompts), decoding, None, decoder, slots)


def generate_rows(omni: OmniModel, rows: list[Row], decoding: DecodingOptions, windows: AutWindows | None = None,
                  decoder: "Decoder | None" = None, slots: int | None = None) -> list[GenerationResult]:
    """`generate_batch` over rows already tokenised by `prepare_rows` (e.g. ahead of time, in another thread)."""
    import torch
    from transformers import StoppingCriteriaList

    from .refill_engine import RefillDecoder

    eos_ids = end_of_turn_ids(omni)
    pad_id = omni.processor.tokenizer.pad_token_id
    # ---- hook: the engines (model/decode_engine.py, model/refill_engine.py) replace `generate`, same results ----
    if isinstance(decoder, RefillDecoder):
        def clips_windows(indices):  # each prefill group runs the audio tower on its own clips
            return omni.family.encoder_windows(omni.model, windows.for_clips(indices) if windows else None,
                                               feature_lengths([rows[i] for i in indices]))

        decoded = decoder.decode_rows(rows, decoding, eos_ids, pad_id, slots or len(rows),
                                      prefill_context=clips_windows)
        return [_to_result(omni, row, logprobs, eos_ids, decoding)
                for row, logprobs in zip(decoded.tokens, decoded.logprobs)]
    inputs = _on_device(omni, rows)
    feature_lens = feature_lengths(rows)
    if decoder is not None:
        with omni.family.encoder_windows(omni.model, windows, feature_lens):
            decoded = decoder.decode(inputs, decoding, eos_ids, pad_id)
        return [_to_result(omni, row, logprobs, eos_ids, decoding)
                for row, logprobs in zip(decoded.tokens, decoded.logprobs)]
    # ---- end of hook ----
    recorder = _LogProbRecorder()
    prompt_len = inputs["input_ids"].shape[1]
    loop_criteria = [LoopStopCriteria(prompt_len, decoding.loop_stop)] if decoding.loop_stop else []
    handle = omni.model.thinker.lm_head.register_forward_hook(recorder.hook)
    try:
        with torch.inference_mode(), omni.family.encoder_windows(omni.model, windows, feature_lens):
            if decoding.do_sample:
                torch.manual_seed(decoding.seed)
            sequences = omni.family.generate_ids(omni.model, inputs, dict(
                max_new_tokens=decoding.max_new_tokens,
                eos_token_id=eos_ids,
                pad_token_id=omni.processor.tokenizer.pad_token_id,
                stopping_criteria=StoppingCriteriaList([recorder] + loop_criteria),
                **decoding.generate_kwargs(),
            ))
    finally:
        handle.remove()
    if not isinstance(sequences, torch.Tensor):
        sequences = sequences.sequences
    generated = sequences[:, prompt_len:].cpu()
    logprobs = torch.stack(recorder.steps, dim=1).cpu() if recorder.steps else None
    return [_to_result(omni, row, logprobs[i] if logprobs is not None else None, eos_ids, decoding)
            for i, row in enumerate(generated)]


def _to_result(omni: OmniModel, row, row_logprobs, eos_ids: list[int], decoding: DecodingOptions) -> GenerationResult:
    ids = row.tolist()
    end = next((i for i, t in enumerate(ids) if t in eos_ids), None)
    content = ids if end is None else ids[:end]
    # Every decoder stops a loop at or after this point; the cut makes their tokens the same.
    loop_end = first_loop_end(content, decoding.loop_stop) if decoding.loop_stop else None
    if loop_end is not None:
        content, end = content[:loop_end], None
    # The end-of-turn token's probability counts: a confident stop is part of a confident answer.
    scored = len(content) + (0 if end is None else 1)
    mean_logprob = None
    if row_logprobs is not None and scored:
        mean_logprob = float(row_logprobs[:scored].mean())
    text = omni.processor.tokenizer.decode(content, skip_special_tokens=True)
    return GenerationResult(text=text.strip(), token_ids=tuple(content), num_tokens=len(content),
                            hit_token_cap=loop_end is None and end is None and len(ids) >= decoding.max_new_tokens,
                            mean_logprob=mean_logprob, loop_stopped=loop_end is not None)
