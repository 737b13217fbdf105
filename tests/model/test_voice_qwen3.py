"""Voicing a given text with the tiny-random talker: what reaches the talker, lengths, speakers, streaming."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from omni_caption.model import LoadOptions, Prompt, load_model
from omni_caption.model.voice_qwen3 import decode_codes, voice_texts
from omni_caption.model.voicing import VoiceOptions
from omni_caption.model.voicing import VOICE_SAMPLE_RATE, VoicingError

PROMPT = Prompt(text="Read this aloud.")
GREEDY = VoiceOptions(max_codes=24, do_sample=False)


@pytest.fixture(scope="module")
def talking(tiny_dir, cache_dir):
    return load_model("tiny-random", LoadOptions(device="cpu", cache_dir=cache_dir, voice=True))


class TalkerSpy:
    """Records the keyword inputs of the talker's first (prefill) forward pass of each generate call."""

    def __init__(self, talker):
        self.prefills: list[dict] = []
        self.handle = talker.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, _module, _args, kwargs):
        if kwargs.get("inputs_embeds") is not None and kwargs["inputs_embeds"].shape[1] > 1:
            self.prefills.append({k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)})

    def close(self):
        self.handle.remove()


def projected_text(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model.talker.text_projection(model.thinker.get_input_embeddings()(torch.tensor([ids])))[0]


def test_the_talker_receives_exactly_the_given_text(talking):
    model = talking.model
    texts = ["The meeting agreed on the budget.", "Short one."]
    spy = TalkerSpy(model.talker)
    try:
        voiced = voice_texts(talking, texts, "ethan", PROMPT, GREEDY)
    finally:
        spy.close()
    (prefill,) = spy.prefills
    tokenizer = talking.processor.tokenizer
    eod = model.config.tts_eos_token_id
    for row, (text, result) in enumerate(zip(texts, voiced)):
        ids = tokenizer(text, add_special_tokens=False).input_ids
        assert list(result.talker_text_ids) == ids
        # After the first token (fed in the prefill), the talker steps through the rest of the text,
        # the end-of-turn token, then the end-of-text marker; the shorter row is padded after it.
        expected = projected_text(model, ids[1:] + [model.config.im_end_token_id, eod])
        trailing = prefill["trailing_text_hidden"][row]
        torch.testing.assert_close(trailing[: len(expected)], expected)
        pad = projected_text(model, [model.config.tts_pad_token_id])[0]
        for extra in trailing[len(expected):]:
            torch.testing.assert_close(extra, pad)
        # The last prefill position is the first text token plus the codec BOS.
        codec_bos = model.talker.get_input_embeddings()(torch.tensor([model.config.talker_config.codec_bos_id]))[0]
        first = projected_text(model, ids[:1])[0]
        torch.testing.assert_close(prefill["inputs_embeds"][row, -1], first + codec_bos)


def test_a_different_text_reaches_the_talker_differently(talking):
    """Negative control: the assertion above is sensitive to the text."""
    model = talking.model
    spy = TalkerSpy(model.talker)
    try:
        voice_texts(talking, ["Completely different words here."], "ethan", PROMPT, GREEDY)
    finally:
        spy.close()
    ids = talking.processor.tokenizer("The meeting agreed on the budget.", add_special_tokens=False).input_ids
    expected = projected_text(model, ids[1:])
    trailing = spy.prefills[0]["trailing_text_hidden"][0][: len(expected)]
    assert not torch.allclose(trailing[: len(expected)], expected[: len(trailing)])


def test_wav_is_24khz_mono_and_codes_times_1920_samples_long(talking):
    (voiced,) = voice_texts(talking, ["Hello there, this is a test."], "chelsie", PROMPT, GREEDY)
    assert voiced.sample_rate == VOICE_SAMPLE_RATE == 24_000
    assert voiced.waveform.ndim == 1 and voiced.waveform.dtype == np.float32
    assert talking.model.code2wav.total_upsample == 1920
    assert voiced.num_codes > 0
    assert len(voiced.waveform) == voiced.num_codes * 1920
    assert voiced.duration_s == pytest.approx(voiced.num_codes / 12.5)


def test_the_three_speakers_select_different_speaker_ids(talking):
    model = talking.model
    table = model.config.talker_config.speaker_id
    assert set(table) == {"ethan", "chelsie", "aiden"}
    pad = projected_text(model, [model.config.tts_pad_token_id])[0]
    seen = {}
    for speaker in ("Ethan", "chelsie", "AIDEN"):
        spy = TalkerSpy(model.talker)
        try:
            voice_texts(talking, ["Hello."], speaker, PROMPT, VoiceOptions(max_codes=3, do_sample=False))
        finally:
            spy.close()
        # Third from last prefill position: the speaker's codec token over a text pad.
        speaker_slot = spy.prefills[0]["inputs_embeds"][0, -3] - pad
        embedding = model.talker.get_input_embeddings()(torch.tensor([table[speaker.lower()]]))[0]
        torch.testing.assert_close(speaker_slot, embedding)
        seen[speaker.lower()] = speaker_slot
    assert not torch.allclose(seen["ethan"], seen["chelsie"])
    assert not torch.allclose(seen["chelsie"], seen["aiden"])


def test_unknown_speaker_and_empty_text_are_refused_before_any_work(talking):
    with pytest.raises(VoicingError, match="unknown speaker 'bob'.*aiden, chelsie, ethan"):
        voice_texts(talking, ["Hello."], "bob", PROMPT, GREEDY)
    with pytest.raises(VoicingError, match="empty text"):
        voice_texts(talking, ["  "], "ethan", PROMPT, GREEDY)


def test_a_model_without_talker_is_refused(tiny):
    with pytest.raises(VoicingError, match="has no talker"):
        voice_texts(tiny, ["Hello."], "ethan", PROMPT, GREEDY)


def test_batch_equals_single_and_streaming_equals_whole(talking):
    texts = ["Hello there, this is a test.", "Short one."]
    batch = voice_texts(talking, texts, "aiden", PROMPT, GREEDY)
    single = voice_texts(talking, texts[1:], "aiden", PROMPT, GREEDY)[0]
    assert single.num_codes == batch[1].num_codes
    np.testing.assert_allclose(single.waveform, batch[1].waveform, atol=1e-6 * np.abs(batch[1].waveform).max())
    chunks: list[np.ndarray] = []
    streamed = voice_texts(talking, texts[:1], "aiden", PROMPT,
                           VoiceOptions(max_codes=24, do_sample=False, stream_chunk_codes=5), on_audio=chunks.append)[0]
    assert len(chunks) >= 4  # 24 codes in chunks of 5, plus the tail
    whole = np.concatenate(chunks)
    np.testing.assert_allclose(whole, batch[0].waveform, atol=1e-5 * np.abs(batch[0].waveform).max())
    np.testing.assert_array_equal(streamed.waveform, whole)


def test_chunked_decode_has_no_gaps_at_joins(talking):
    """The library's chunked_decode drops samples at every chunk join; ours matches one whole decode."""
    code2wav = talking.model.code2wav
    groups = talking.model.config.code2wav_config.num_quantizers
    codes = torch.randint(0, talking.model.config.code2wav_config.codebook_size, (groups, 70),
                          generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = code2wav(codes[None]).reshape(-1).numpy()
    ours = decode_codes(code2wav, codes, chunk_codes=16, left_context=25)
    assert len(ours) == 70 * 1920
    np.testing.assert_allclose(ours[: len(whole)], whole, atol=1e-4 * np.abs(whole).max())
    np.testing.assert_array_equal(ours[len(whole):], 0)
    library = code2wav.chunked_decode(codes[None], chunk_size=16, left_context_size=25).reshape(-1).detach().numpy()
    assert len(library) < len(whole)  # why we decode ourselves


def test_code2wav_runs_once_per_chunk_of_ours_not_again_inside_the_library(talking):
    from transformers import Qwen3OmniMoeForConditionalGeneration

    passes = []
    handle = talking.model.code2wav.register_forward_hook(lambda _m, args, _out: passes.append(args[0].shape[-1]))
    try:
        (whole,) = voice_texts(talking, ["Hello there, this is a test."], "ethan", PROMPT, GREEDY)
        whole_passes = list(passes)
        passes.clear()
        voice_texts(talking, ["Hello there, this is a test."], "ethan", PROMPT,
                    VoiceOptions(max_codes=24, do_sample=False, stream_chunk_codes=10), on_audio=lambda _: None)
    finally:
        handle.remove()
    assert whole_passes == [whole.num_codes]  # one decode of all the codes (under 300), ours
    assert len(passes) == -(-whole.num_codes // 10) and max(passes) <= 10 + 25  # streamed: a chunk with context each
    assert "chunked_decode" not in vars(talking.model.code2wav)  # the library's method is back
    # What is shadowed is still how the library makes audio: if this fails, code2wav may run twice again.
    assert "self.code2wav.chunked_decode(" in inspect.getsource(Qwen3OmniMoeForConditionalGeneration.generate)


@pytest.mark.parametrize("preset", ["captioner", "thinking"])
def test_thinker_only_presets_are_refused_before_loading(preset, cache_dir):
    from omni_caption.model import ModelLoadError

    # Neither is cached here: the refusal must come from the preset, before any hub access.
    with pytest.raises(ModelLoadError, match=f"'{preset}' has no talker"):
        load_model(preset, LoadOptions(device="cpu", cache_dir=cache_dir, voice=True))


def test_a_local_checkpoint_without_talker_weights_is_refused(tiny, tmp_path):
    from omni_caption.model import ModelLoadError

    tiny.model.save_pretrained(tmp_path / "thinker-only")
    tiny.processor.save_pretrained(tmp_path / "thinker-only")
    with pytest.raises(ModelLoadError, match="has no talker"):
        load_model(str(tmp_path / "thinker-only"), LoadOptions(device="cpu", voice=True))
