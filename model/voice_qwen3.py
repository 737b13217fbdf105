"""Voice a given text exactly with the Qwen3-Omni talker.

The talker conditions on the thinker's input embeddings and one hidden layer,
and the assistant text reaches it only as those embeddings. So instead of
letting the thinker sample an answer, the thinker is teacher-forced over the
prompt plus the given text in one forward pass with hidden states, and the
library's own `generate` builds the talker inputs from that pass exactly as it
does from a sampled one: user part, speaker and codec special tokens, trailing
text with the per-row end-of-text marker, talker + MTP, then code2wav.

Two library internals are relied on, both in `_talker_only_generate`, the
one place that knows them: `generate` obtains the thinker's result through
`self.thinker.generate(...)` (reading `.sequences` and `.hidden_states`), and
turns codes into audio through `self.code2wav.chunked_decode(...)`. The first
is shadowed by the teacher-forced pass, and it raises if the library stops
calling it; the second by an empty waveform, because the codes are tapped and
decoded here without the gaps the library leaves at its chunk joins, and
decoding them twice would only cost time (a test counts code2wav passes).
"""

from __future__ import annotations

import warnings

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from .generation import Prompt, prepare_inputs
from .hf_quiet import quiet_transformers
from .loading import OmniModel
from .voicing import VOICE_SAMPLE_RATE, VoiceOptions, VoicedText, VoicingError

CODEC_FRAME_RATE_HZ = 12.5  # talker codes per second of speech
# The user turn a voiced text answers. The talker hears the text itself only as the assistant's reply.
READ_ALOUD_REQUEST = "Read the following text aloud, exactly as written."


def speakers(omni: OmniModel) -> tuple[str, ...]:
    config = getattr(omni.model.config, "talker_config", None)
    return tuple(sorted(getattr(config, "speaker_id", None) or {}))


def speaker_id(omni: OmniModel, speaker: str) -> int:
    if not getattr(omni.model, "has_talker", False):
        raise VoicingError(f"{omni.model_label} has no talker: voice with the instruct preset")
    table = omni.model.config.talker_config.speaker_id
    if speaker.lower() not in table:
        raise VoicingError(f"unknown speaker {speaker!r}: choose one of {', '.join(speakers(omni))}")
    return table[speaker.lower()]


def default_max_codes(text: str) -> int:
    # 10 characters a second is slow speech; 4 s of slack covers pauses.
    seconds = len(text) / 10 + 4
    return int(min(4096, max(50, seconds * CODEC_FRAME_RATE_HZ)))


@contextmanager
def _talker_only_generate(model, forced) -> Iterator[None]:
    """For the duration, `model.generate` takes the teacher-forced pass as the thinker's result and
    leaves the waveform to us: `thinker.generate` returns `forced`, `code2wav.chunked_decode` an empty batch."""
    import torch

    calls: list = []

    def forced_generate(*_args, **_kwargs):
        calls.append(1)
        return forced

    def no_waveform(codes, *_args, **_kwargs):
        return torch.zeros((codes.shape[0], 1, 0), dtype=torch.float32, device=codes.device)

    # Instance attributes shadow the methods; deleting them restores the library's.
    model.thinker.generate = forced_generate
    model.code2wav.chunked_decode = no_waveform
    try:
        yield
    finally:
        del model.thinker.generate
        del model.code2wav.chunked_decode
    if len(calls) != 1:
        raise RuntimeError("transformers no longer asks the thinker through thinker.generate; "
                           "model/voice_qwen3.py must follow its Qwen3OmniMoeForConditionalGeneration.generate")


def _forced_thinker_pass(omni: OmniModel, prompt_ids, text_ids: list[list[int]]):
    """sequences = prompt + text + end-of-turn (right-padded), with the hidden states of one forward pass."""
    import torch
    from transformers.generation.utils import GenerateDecoderOnlyOutput

    tokenizer = omni.processor.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else omni.model.config.im_end_token_id
    width = max(len(ids) for ids in text_ids)
    block = torch.full((len(text_ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(text_ids), width), dtype=torch.long)
    for row, ids in enumerate(text_ids):
        block[row, :len(ids)] = torch.tensor(ids)
        mask[row, :len(ids)] = 1
    sequences = torch.cat([prompt_ids, block.to(prompt_ids.device)], dim=1)
    attention = torch.cat([torch.ones_like(prompt_ids), mask.to(prompt_ids.device)], dim=1)
    # Only the hidden states are wanted: let lm_head see one position, not [batch, length, 152k] logits.
    handle = omni.model.thinker.lm_head.register_forward_pre_hook(lambda _m, args: (args[0][:, -1:],))
    try:
        out = omni.model.thinker(input_ids=sequences, attention_mask=attention, output_hidden_states=True,
                                 use_cache=False, return_dict=True)
    finally:
        handle.remove()
    # generate() concatenates hidden states over steps; one step holding the whole sequence is the same thing.
    return GenerateDecoderOnlyOutput(sequences=sequences, hidden_states=(out.hidden_states,))


class _ContinuousDecoder:
    """Decodes one growing code sequence in chunks with left context, emitting every sample once, in order.

    code2wav is causal but its transposed convolutions leave the last few
    hundred samples of any decode incomplete (they need the next frame). Each
    chunk therefore re-decodes a little left context and emits from the first
    sample not yet emitted, so chunk joins have neither gaps nor repeats (the
    library's own `chunked_decode` drops those samples at every join).
    """

    def __init__(self, code2wav, left_context: int):
        self.code2wav, self.left_context = code2wav, left_context
        self.samples_per_code = int(code2wav.total_upsample)
        self.decoded_codes = 0
        self.emitted = 0

    def decode(self, codes) -> np.ndarray:
        """New samples for codes [groups, n] (a prefix grown since the last call)."""
        import torch

        n = codes.shape[1]
        if n <= self.decoded_codes:
            return np.zeros(0, dtype=np.float32)
        start = max(0, self.decoded_codes - self.left_context)
        with torch.inference_mode():
            wav = self.code2wav(codes[None, :, start:n].to(self.code2wav.device)).reshape(-1)
        new = wav[self.emitted - start * self.samples_per_code:].float().cpu().numpy()
        self.decoded_codes = n
        self.emitted += len(new)
        return new

    def finish(self) -> np.ndarray:
        """Silence for the incomplete tail, so n codes make exactly n x samples_per_code samples."""
        return np.zeros(self.decoded_codes * self.samples_per_code - self.emitted, dtype=np.float32)


def decode_codes(code2wav, codes, chunk_codes: int = 300, left_context: int = 25) -> np.ndarray:
    """The waveform of codes [groups, n]: n x samples_per_code float32 samples."""
    decoder = _ContinuousDecoder(code2wav, left_context)
    pieces = [decoder.decode(codes[:, :end]) for end in range(chunk_codes, codes.shape[1] + chunk_codes, chunk_codes)]
    return np.concatenate(pieces + [decoder.finish()]).astype(np.float32)


class _CodeTap:
    """Collects the talker's codec frames step by step (a forward hook), optionally streaming row 0's audio."""

    def __init__(self, omni: OmniModel, eos_id: int, on_audio: Callable[[np.ndarray], None] | None,
                 options: VoiceOptions):
        self.eos_id, self.on_audio, self.options = eos_id, on_audio, options
        self.decoder = _ContinuousDecoder(omni.model.code2wav, options.stream_left_context)
        self.frames: list = []  # [batch, code_groups] per step
        self.streamed: list[np.ndarray] = []

    def hook(self, _module, _inputs, output) -> None:
        codes = output.hidden_states[1] if output.hidden_states is not None else None
        if codes is None:
            return  # the prefill step carries no codes yet
        self.frames.append(codes.detach())
        if self.on_audio is not None:
            row = self.codes(0)
            ended = row.shape[1] < len(self.frames)
            if ended or row.shape[1] - self.decoder.decoded_codes >= self.options.stream_chunk_codes:
                self._emit(self.decoder.decode(row))

    def codes(self, row: int):
        """[code_groups, n] for one row, up to (not including) its end-of-speech frame."""
        import torch

        if not self.frames:
            return torch.zeros((0, 0), dtype=torch.long)
        stacked = torch.stack([f[row] for f in self.frames], dim=1)  # [groups, steps]
        ends = (stacked[0] == self.eos_id).nonzero()
        return stacked[:, : int(ends[0]) if len(ends) else stacked.shape[1]]

    def finish(self) -> None:
        if self.on_audio is not None:
            self._emit(self.decoder.decode(self.codes(0)))
            self._emit(self.decoder.finish())

    def _emit(self, samples: np.ndarray) -> None:
        if len(samples):
            self.streamed.append(samples)
            self.on_audio(samples)


def voice_texts(omni: OmniModel, texts: list[str], speaker: str, prompt: Prompt,
                options: VoiceOptions = VoiceOptions(),
                on_audio: Callable[[np.ndarray], None] | None = None) -> list[VoicedText]:
    """Speak each text exactly, in one batch. `prompt` is the user turn the text answers.

    `on_audio` (one text only): called with each ~`stream_chunk_codes` of audio as code2wav decodes it.
    """
    import torch

    if on_audio is not None and len(texts) != 1:
        raise ValueError("streaming voices one text at a time")
    if not texts:
        return []
    if any(not t.strip() for t in texts):
        raise VoicingError("cannot voice an empty text")
    model = omni.model
    speaker_id(omni, speaker)  # validates before any work
    tokenizer = omni.processor.tokenizer
    im_end = model.config.im_end_token_id
    text_ids = [tokenizer(t, add_special_tokens=False).input_ids + [im_end] for t in texts]
    inputs = prepare_inputs(omni, None, [prompt] * len(texts))
    prompt_ids = inputs["input_ids"]  # one prompt for all rows: no padding
    cap = options.max_codes or max(default_max_codes(t) for t in texts)
    tap = _CodeTap(omni, model.config.talker_config.codec_eos_token_id, on_audio, options)
    handle = model.talker.register_forward_hook(tap.hook)
    try:
        with torch.inference_mode():
            forced = _forced_thinker_pass(omni, prompt_ids, text_ids)
            if options.do_sample:
                torch.manual_seed(options.seed)
            with _talker_only_generate(model, forced), warnings.catch_warnings(), quiet_transformers():
                # The talker is driven by embeddings by design; its repetition-penalty notice says nothing to users.
                warnings.filterwarnings("ignore", message=".*repetition_penalty.*inputs_embeds")
                model.generate(input_ids=prompt_ids, attention_mask=inputs["attention_mask"],
                               speaker=speaker.lower(), return_audio=True, thinker_eos_token_id=im_end,
                               talker_max_new_tokens=cap, talker_min_new_tokens=options.min_codes,
                               talker_do_sample=options.do_sample)
        tap.finish()
    finally:
        handle.remove()
    results = []
    for row, (text, ids) in enumerate(zip(texts, text_ids)):
        codes = tap.codes(row)
        if on_audio is None:
            waveform = decode_codes(model.code2wav, codes)
        else:
            waveform = np.concatenate(tap.streamed or [np.zeros(0, np.float32)])
        results.append(VoicedText(text=text, speaker=speaker.lower(), waveform=waveform, sample_rate=VOICE_SAMPLE_RATE,
                                  talker_text_ids=tuple(ids[:-1]), num_codes=int(codes.shape[1])))
    return results
