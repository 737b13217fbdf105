"""Qwen2.5-Omni voicing of a GIVEN text: teacher-forced thinker, then the library's talker and token2wav.

`Qwen2_5OmniForConditionalGeneration.generate` samples a reply with the
thinker and hands the talker, per reply token, the thinker's input embedding
plus its last hidden state. To speak a text we are *given* (a stored
summary), the thinker instead runs one forward pass over prompt + that text
(`output_hidden_states=True`, no sampling), and `talker_inputs` assembles the
talker's conditioning exactly as the library's `generate` does from its own
reply. That assembly mirrors transformers' code (5.23), so it is kept in one
function, and tests/model/test_voice_qwen25.py checks it against the
library's own `generate`: a transformers change that moves it breaks there.
"""

from __future__ import annotations

import numpy as np

from .generation import Prompt, prepare_inputs
from .loading import OmniModel
from .voicing import VOICE_SAMPLE_RATE, VoicedText, VoicingError

# The user turn the given text answers; the text itself follows in that turn, so the reply is a copy.
VOICE_REQUEST = "Read the following text aloud, word for word.\n\n{text}"
# Talker codes run at 50 per second; speech runs at about 15 characters per second. Cap generously.
MAX_CODES_BASE, MAX_CODES_PER_CHAR = 64, 8
VOICE_SEED = 0  # the talker samples and token2wav starts from noise: a fixed seed makes voicing reproducible
# The library's talker sampling defaults (Qwen2_5OmniForConditionalGeneration.generate).
TALKER_SAMPLING = dict(do_sample=True, top_k=40, top_p=0.8, temperature=0.9, repetition_penalty=1.05)


def voice_texts(omni: OmniModel, texts: list[str], speaker: str) -> list[VoicedText]:
    """Speak each text with `speaker` (the model's own spelling); 24 kHz mono float32 waveforms."""
    if not getattr(omni.model, "has_talker", False):
        raise VoicingError(f"model {omni.source.spec!r} was loaded without its talker (load it with voice=True)")
    if speaker not in omni.model.speaker_map:
        raise VoicingError(f"speaker {speaker!r} is not one of {', '.join(omni.model.speaker_map)}")
    return [_voice_one(omni, text, speaker) for text in texts]


def _voice_one(omni: OmniModel, text: str, speaker: str) -> VoicedText:
    import torch

    if not text or not text.strip():
        raise VoicingError("an empty text cannot be voiced")
    prompt = prepare_inputs(omni, None, [Prompt(text=VOICE_REQUEST.format(text=text))])
    reply_ids = omni.processor.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    reply_ids = reply_ids.to(omni.device)
    talker = omni.model.talker
    with torch.inference_mode(), torch.random.fork_rng(devices=_cuda_devices(omni)):
        torch.manual_seed(VOICE_SEED)
        conditioning = talker_inputs(omni.model, prompt["input_ids"], prompt["attention_mask"], reply_ids,
                                     omni.model.speaker_map[speaker]["bos_token"])
        stops = [talker.codec_pad_token, talker.codec_eos_token]
        sequences = talker.generate(**conditioning, max_new_tokens=MAX_CODES_BASE + MAX_CODES_PER_CHAR * len(text),
                                    eos_token_id=stops, pad_token_id=talker.codec_pad_token, **TALKER_SAMPLING)
        codes = sequences[:, conditioning["input_ids"].shape[1]:]
        stop_at = [i for i, code in enumerate(codes[0].tolist()) if code in stops]
        codes = codes[:, :stop_at[0]] if stop_at else codes
        waveform = _token2wav(omni, codes, speaker)
    return VoicedText(text=text, speaker=speaker, waveform=waveform, sample_rate=VOICE_SAMPLE_RATE,
                      talker_text_ids=tuple(reply_ids[0].tolist()), num_codes=int(codes.shape[1]))


def talker_inputs(model, prompt_ids, prompt_mask, reply_ids, speaker_bos: int) -> dict:
    """The talker's `generate` inputs for a reply of exactly `reply_ids` after the prompt (batch of one).

    Mirrors Qwen2_5OmniForConditionalGeneration.generate (transformers 5.23): per position the talker
    reads thinker input embedding + last hidden state; the prompt, then the speaker's text-track start
    token, then the reply's first token go in as `inputs_embeds`; the rest of the reply, then the text
    end and pad embeddings, stream in as `thinker_reply_part`, one per generated code. There, the last
    sampled token (end of turn) is never forwarded, so the reply the talker reads is all tokens before it:
    here, all of `reply_ids`.
    """
    import torch

    thinker, talker = model.thinker, model.talker
    full_ids = torch.cat([prompt_ids, reply_ids], dim=1)
    full_mask = torch.cat([prompt_mask, torch.ones_like(reply_ids)], dim=1)
    states = thinker(input_ids=full_ids, attention_mask=full_mask, output_hidden_states=True,
                     use_cache=False).hidden_states
    streams = states[-1] + states[0]  # last layer + token embeddings, per position
    prompt_len = prompt_ids.shape[1]
    head, reply = streams[:, :prompt_len], streams[:, prompt_len:]
    embed = thinker.get_input_embeddings()

    def token(token_id: int):
        return torch.full((1, 1), token_id, dtype=torch.long, device=prompt_ids.device)

    bos = token(speaker_bos)
    return dict(
        input_ids=torch.cat([torch.full_like(prompt_ids, talker.codec_mask_token), token(talker.codec_pad_token),
                             token(talker.codec_bos_token)], dim=1),
        input_text_ids=torch.cat([prompt_ids, bos, reply_ids[:, :1]], dim=1),
        inputs_embeds=torch.cat([head, embed(bos), reply[:, :1]], dim=1),
        thinker_reply_part=torch.cat([reply[:, 1:], embed(token(talker.text_eos_token)),
                                      embed(token(talker.text_pad_token))], dim=1),
        attention_mask=torch.cat([prompt_mask, prompt_mask.new_ones((1, 2))], dim=1),
        suppress_tokens=[talker.codec_bos_token],
    )


def _token2wav(omni: OmniModel, codes, speaker: str) -> np.ndarray:
    if codes.shape[1] == 0:  # the talker stopped at once: no speech, said plainly rather than padded
        return np.zeros(0, dtype=np.float32)
    params = omni.model.speaker_map[speaker]
    device = codes.device
    waveform = omni.model.token2wav.float()(codes, conditioning=params["cond"].to(device).float(),
                                            reference_mel=params["ref_mel"].to(device).float())
    return np.clip(waveform.reshape(-1).float().cpu().numpy(), -1.0, 1.0).astype(np.float32)


def _cuda_devices(omni: OmniModel) -> list:
    return [omni.device] if omni.device.startswith("cuda") else []
