"""Qwen2.5-Omni voices a GIVEN text: what reaches the talker, the waveform, the speakers."""

import numpy as np
import pytest
import torch

from omni_caption.model import LoadOptions, load_model
from omni_caption.model.generation import Prompt, prepare_inputs
from omni_caption.model.voice_qwen25 import talker_inputs
from omni_caption.model.voicing import VOICE_SAMPLE_RATE, VoicingError

TEXT = "the dog barks in the rain."


@pytest.fixture(scope="module")
def voiced(tiny25_dir, cache_dir):
    return load_model("tiny-random-2.5", LoadOptions(device="cpu", cache_dir=cache_dir, voice=True))


class TalkerSpy:
    """Records the talker's first (prefill) forward kwargs, the thinker's input ids, and token2wav's conditioning."""

    def __init__(self, model):
        self.prefill, self.thinker_ids, self.token2wav = [], [], []
        self.handles = [
            model.talker.register_forward_pre_hook(self._talker, with_kwargs=True),
            model.thinker.register_forward_pre_hook(
                lambda m, a, kw: self.thinker_ids.append(kw["input_ids"].clone()), with_kwargs=True),
            model.token2wav.register_forward_pre_hook(
                lambda m, a, kw: self.token2wav.append({k: kw[k].clone() for k in ("conditioning", "reference_mel")}),
                with_kwargs=True),
        ]

    def _talker(self, _module, _args, kwargs):
        if kwargs.get("inputs_embeds") is not None and kwargs["inputs_embeds"].shape[1] > 1:
            self.prefill.append({k: v.clone() for k, v in kwargs.items() if torch.is_tensor(v)})

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


def test_talker_receives_exactly_the_given_text(voiced):
    text_ids = voiced.processor.tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    with TalkerSpy(voiced.model) as spy:
        [result] = voiced.family.voice_texts(voiced, [TEXT], "Chelsie")
    assert result.talker_text_ids == tuple(text_ids)
    # One teacher-forced thinker pass over prompt + the text, nothing sampled after it.
    [thinker_ids] = spy.thinker_ids
    assert thinker_ids[0, -len(text_ids):].tolist() == text_ids
    [prefill] = spy.prefill
    assert prefill["input_text_ids"][0, -1].item() == text_ids[0]  # the reply's first token opens the text track
    # The rest of the text streams in one position per code, then text-end and pad.
    assert prefill["thinker_reply_part"].shape[1] == len(text_ids) - 1 + 2


def test_a_different_text_reaches_the_talker_differently(voiced):
    """Negative control for the test above: the talker's inputs follow the text."""
    with TalkerSpy(voiced.model) as spy:
        voiced.family.voice_texts(voiced, [TEXT, "the cat sleeps in the sun."], "Chelsie")
    first, second = spy.prefill
    assert not torch.allclose(first["thinker_reply_part"][:, :3], second["thinker_reply_part"][:, :3])


def test_talker_inputs_match_the_librarys_own_generate(voiced):
    """`talker_inputs` mirrors Qwen2_5OmniForConditionalGeneration.generate: if transformers changes how it
    conditions the talker, this breaks. The library's reply is greedy; ours is the same reply, teacher-forced."""

    class Stop(Exception):
        pass

    seen = []

    def capture(**kwargs):
        seen.append(kwargs)
        raise Stop

    inputs = prepare_inputs(voiced, None, [Prompt(text="Say something.")])
    original = voiced.model.talker.generate
    voiced.model.talker.generate = capture
    try:
        with pytest.raises(Stop):
            voiced.model.generate(**inputs, speaker="Ethan", thinker_max_new_tokens=6, thinker_do_sample=False)
    finally:
        voiced.model.talker.generate = original
    library = seen[0]
    with torch.inference_mode():
        generated = voiced.model.thinker.generate(**inputs, max_new_tokens=6, do_sample=False)
    reply = generated[:, inputs["input_ids"].shape[1]:-1]  # the library never forwards its last sampled token
    ours = talker_inputs(voiced.model, inputs["input_ids"], inputs["attention_mask"], reply,
                         voiced.model.speaker_map["Ethan"]["bos_token"])
    assert set(ours) <= set(library)
    for key, value in ours.items():
        if torch.is_tensor(value) and value.is_floating_point():
            torch.testing.assert_close(value, library[key], atol=1e-4, rtol=1e-4, msg=key)
        elif torch.is_tensor(value):
            assert torch.equal(value, library[key]), key
        else:
            assert value == library[key], key


def test_waveform_is_24_khz_mono_float32(voiced):
    [result] = voiced.family.voice_texts(voiced, [TEXT], "Ethan")
    assert result.sample_rate == VOICE_SAMPLE_RATE == 24_000
    assert result.waveform.ndim == 1 and result.waveform.dtype == np.float32
    assert result.num_codes > 0
    # 50 codes per second: the DiT makes 2 mel frames per code and BigVGAN 240 samples per frame.
    assert len(result.waveform) == result.num_codes * 480
    assert np.abs(result.waveform).max() <= 1.0 and np.isfinite(result.waveform).all()


def test_each_speaker_selects_different_conditioning(voiced):
    assert voiced.family.speakers(voiced) == ("Chelsie", "Ethan")
    with TalkerSpy(voiced.model) as spy:
        chelsie = voiced.family.voice_texts(voiced, [TEXT], "chelsie")[0]  # names match case-insensitively
        ethan = voiced.family.voice_texts(voiced, [TEXT], "Ethan")[0]
    assert (chelsie.speaker, ethan.speaker) == ("Chelsie", "Ethan")
    starts = [p["input_text_ids"][0, -2].item() for p in spy.prefill]  # the speaker's text-track start token
    assert starts == [voiced.model.speaker_map[s]["bos_token"] for s in ("Chelsie", "Ethan")]
    assert starts[0] != starts[1]
    first, second = spy.token2wav
    assert not torch.equal(first["conditioning"], second["conditioning"])
    assert not torch.equal(first["reference_mel"], second["reference_mel"])


def test_voicing_is_reproducible(voiced):
    a = voiced.family.voice_texts(voiced, [TEXT], "Ethan")[0]
    b = voiced.family.voice_texts(voiced, [TEXT], "Ethan")[0]
    assert np.array_equal(a.waveform, b.waveform)


@pytest.mark.parametrize("texts,speaker,message", [
    ([TEXT], "aiden", "unknown speaker 'aiden': Qwen2.5-Omni's voices are Chelsie, Ethan"),
    (["  "], "Ethan", "empty text"),
])
def test_bad_requests_are_one_line_errors(voiced, texts, speaker, message):
    with pytest.raises(VoicingError, match=message) as info:
        voiced.family.voice_texts(voiced, texts, speaker)
    assert "\n" not in str(info.value)


def test_thinker_only_load_cannot_voice(tiny25):
    with pytest.raises(VoicingError, match="without its talker"):
        tiny25.family.voice_texts(tiny25, [TEXT], "Ethan")


def test_qwen3_voicing_goes_through_the_same_interface(tiny, cache_dir):
    from omni_caption.model import LoadOptions, load_model
    from omni_caption.model.voicing import VoiceOptions

    assert tiny.family.speakers(tiny) == ("aiden", "chelsie", "ethan")
    with pytest.raises(VoicingError, match="has no talker"):
        tiny.family.voice_texts(tiny, [TEXT], "Ethan")
    talking = load_model("tiny-random", LoadOptions(device="cpu", cache_dir=cache_dir, voice=True))
    (voiced,) = talking.family.voice_texts(talking, [TEXT], "ETHAN", VoiceOptions(max_codes=4, do_sample=False))
    assert voiced.speaker == "ethan" and voiced.num_codes > 0 and voiced.sample_rate == 24_000
