"""Batched generation against the real classes on each family's tiny random model (greedy: tokens must match)."""

import numpy as np
import pytest
import torch

from omni_caption.model import DecodingOptions, Prompt, generate_batch
from omni_caption.model import generation

GREEDY = DecodingOptions(max_new_tokens=12)


def clips():
    """Four clips of different lengths and content (1.3 s .. 7.5 s)."""
    t = lambda s: np.arange(int(16000 * s)) / 16000  # noqa: E731
    rng = np.random.default_rng(0)
    return [
        (0.3 * np.sin(2 * np.pi * 220 * t(1.3))).astype(np.float32),
        (0.1 * rng.standard_normal(64000)).astype(np.float32),
        (0.5 * np.sign(np.sin(2 * np.pi * 3 * t(2.2)))).astype(np.float32),
        (0.2 * np.sin(2 * np.pi * 1000 * t(7.5)) * np.sin(2 * np.pi * 0.5 * t(7.5))).astype(np.float32),
    ]


def test_batch_equals_each_clip_alone(omni):
    audios = clips()
    batched = generate_batch(omni, audios, Prompt(), GREEDY)
    singles = [generate_batch(omni, [a], Prompt(), GREEDY)[0] for a in audios]
    assert [r.token_ids for r in batched] == [r.token_ids for r in singles]
    # Outputs differ between clips, so the comparison above is not trivially true.
    assert len({r.token_ids for r in singles}) == len(audios)
    for b, s in zip(batched, singles):
        assert b.mean_logprob == pytest.approx(s.mean_logprob, abs=1e-3)  # fp32 sums over padded shapes


def test_a_short_clip_batched_with_a_long_one_sees_exactly_its_own_features(omni):
    """A clip's last log-mel frame must not depend on what it is batched with (the feature extractor's STFT
    padding: zeros from a longer neighbour in one processor call, reflection alone)."""
    rng = np.random.default_rng(7)
    long = (0.1 * rng.standard_normal(16000 * 27)).astype(np.float32)
    short = (0.1 * rng.standard_normal(16000 * 5)).astype(np.float32)
    batched = generation.prepare_inputs(omni, [long, short], Prompt())
    alone = generation.prepare_inputs(omni, [short], Prompt())
    frames = int(alone["feature_attention_mask"][0].sum())
    assert int(batched["feature_attention_mask"][1].sum()) == frames
    torch.testing.assert_close(batched["input_features"][1][:, :frames], alone["input_features"][0][:, :frames],
                               rtol=0, atol=0)
    assert [r.token_ids for r in generate_batch(omni, [long, short], Prompt(), GREEDY)][1] == \
        generate_batch(omni, [short], Prompt(), GREEDY)[0].token_ids


def test_one_processor_call_for_the_batch_would_change_the_short_clip(omni):
    """Negative control for the test above: the processor's own batching differs in the short clip's last frame."""
    rng = np.random.default_rng(7)
    long = (0.1 * rng.standard_normal(16000 * 27)).astype(np.float32)
    short = (0.1 * rng.standard_normal(16000 * 5)).astype(np.float32)
    extract = omni.processor.feature_extractor
    options = dict(sampling_rate=16000, truncation=False, padding="longest", return_attention_mask=True,
                   return_tensors="pt")
    together = extract([long, short], **options)
    alone = extract([short], **options)
    frames = int(alone["attention_mask"][0].sum())
    assert int(together["attention_mask"][1].sum()) == frames
    assert not torch.equal(together["input_features"][1][:, :frames], alone["input_features"][0][:, :frames])


def test_parity_check_detects_unmasked_padding(omni, monkeypatch):
    """Negative control: with padding left visible, batched output must drift from singles."""
    audios = clips()
    singles = [generate_batch(omni, [a], Prompt(), GREEDY)[0].token_ids for a in audios]
    original = generation._on_device

    def unmasked(*args, **kwargs):
        inputs = original(*args, **kwargs)
        inputs["attention_mask"] = torch.ones_like(inputs["attention_mask"])
        return inputs

    monkeypatch.setattr(generation, "_on_device", unmasked)
    broken = [r.token_ids for r in generate_batch(omni, audios, Prompt(), GREEDY)]
    assert broken != singles


def test_single_clip_matches_model_card_usage(tiny):
    """processor.apply_chat_template + model.generate, as in the Qwen3-Omni model card."""
    audio = clips()[3]
    conversation = [{"role": "user", "content": [{"type": "audio", "audio": "clip.wav"},
                                                 {"type": "text", "text": "What do you hear?"}]}]
    text = tiny.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    inputs = tiny.processor(text=text, audio=[audio], return_tensors="pt", padding=True)
    inputs.pop("num_audio_tokens", None)
    with torch.inference_mode():
        text_ids = tiny.model.generate(**inputs, thinker_return_dict_in_generate=True, return_audio=False,
                                       thinker_max_new_tokens=12, thinker_do_sample=False,
                                       thinker_eos_token_id=tiny.model.config.im_end_token_id)
    card_tokens = text_ids.sequences[0, inputs["input_ids"].shape[1]:].tolist()
    im_end = tiny.model.config.im_end_token_id
    card_tokens = card_tokens[:card_tokens.index(im_end)] if im_end in card_tokens else card_tokens
    ours = generate_batch(tiny, [audio], Prompt(text="What do you hear?"), GREEDY)[0]
    assert list(ours.token_ids) == card_tokens
    card_text = tiny.processor.batch_decode([card_tokens], skip_special_tokens=True)[0].strip()
    assert ours.text == card_text


def test_result_fields(omni):
    results = generate_batch(omni, clips()[:2], Prompt(), DecodingOptions(max_new_tokens=5))
    for r in results:
        assert r.num_tokens == len(r.token_ids) <= 5
        assert r.hit_token_cap == (r.num_tokens == 5)
        assert r.mean_logprob is not None and r.mean_logprob <= 0.0


def test_token_cap_is_applied_explicitly(omni):
    long = generate_batch(omni, clips()[:1], Prompt(), DecodingOptions(max_new_tokens=40))[0]
    short = generate_batch(omni, clips()[:1], Prompt(), DecodingOptions(max_new_tokens=3))[0]
    assert short.hit_token_cap and short.num_tokens == 3
    assert long.token_ids[:3] == short.token_ids


def test_sampling_is_seeded(omni):
    options = DecodingOptions(max_new_tokens=8, do_sample=True, temperature=0.6, top_p=0.95, top_k=20, seed=7)
    a = generate_batch(omni, clips()[:2], Prompt(), options)
    b = generate_batch(omni, clips()[:2], Prompt(), options)
    assert [r.token_ids for r in a] == [r.token_ids for r in b]


def test_empty_input_gives_no_results(omni):
    assert generate_batch(omni, [], Prompt(), GREEDY) == []


@pytest.mark.parametrize("samples", [0, 1, 200])
def test_a_clip_shorter_than_one_stft_frame_is_heard_followed_by_silence(omni, samples):
    """A 6 ms click (or a 0-sample tail) must not stop a run: Qwen3-Omni's feature extractor refuses fewer than
    n_fft/2 + 1 samples (STFT reflect padding), so such a clip is padded with silence to n_fft samples."""
    clip = (0.3 * np.random.default_rng(3).standard_normal(samples)).astype(np.float32)
    n_fft = omni.processor.feature_extractor.n_fft
    padded = np.concatenate([clip, np.zeros(n_fft - samples, dtype=np.float32)])
    short, with_silence = generate_batch(omni, [clip, padded], Prompt(), GREEDY)
    assert short.token_ids == with_silence.token_ids and len(short.token_ids) > 0
    assert short.mean_logprob == pytest.approx(with_silence.mean_logprob, abs=1e-4)


def test_text_only_generation_batched_equals_single(omni):
    from omni_caption.model import generate_text

    prompts = [Prompt(text="Summarise: [00:00-00:05] a dog barks."),
               Prompt(text="Summarise: [00:00-00:30] people talk in a meeting room about the budget.")]
    batched = generate_text(omni, prompts, GREEDY)
    singles = [generate_text(omni, [p], GREEDY)[0] for p in prompts]
    assert [r.token_ids for r in batched] == [r.token_ids for r in singles]
    assert batched[0].token_ids != batched[1].token_ids
    text = omni.processor.apply_chat_template(prompts[0].to_messages(with_audio=False), add_generation_prompt=True,
                                              tokenize=False)
    assert omni.processor.audio_token not in text and "a dog barks" in text


def card_tokens_qwen25(full, conversation, audio) -> list[int]:
    """Qwen2.5-Omni as its model card runs it: the full model's own generate (talker loaded, text output)."""
    text = full.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    inputs = full.processor(text=text, audio=[audio], return_tensors="pt", padding=True)
    inputs.pop("num_audio_tokens", None)
    im_end = full.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    with torch.inference_mode():
        sequences = full.model.generate(**inputs, generation_mode="text", thinker_max_new_tokens=12,
                                        thinker_do_sample=False, thinker_eos_token_id=im_end)
    tokens = sequences[0, inputs["input_ids"].shape[1]:].tolist()
    return tokens[:tokens.index(im_end)] if im_end in tokens else tokens


def test_qwen25_single_clip_matches_model_card_usage(tiny25, cache_dir):
    """With the official system prompt the card requires, our thinker-only batched path gives the card's tokens."""
    from omni_caption.model import LoadOptions, load_model
    from omni_caption.model.family_qwen25 import QWEN25_SYSTEM_PROMPT

    full = load_model("tiny-random-2.5", LoadOptions(device="cpu", cache_dir=cache_dir, voice=True))
    audio = clips()[3]
    user = {"role": "user", "content": [{"type": "audio", "audio": "clip.wav"},
                                        {"type": "text", "text": "What do you hear?"}]}
    system = {"role": "system", "content": [{"type": "text", "text": QWEN25_SYSTEM_PROMPT}]}
    ours = generate_batch(tiny25, [audio], Prompt(text="What do you hear?"), GREEDY)[0]
    assert list(ours.token_ids) == card_tokens_qwen25(full, [system, user], audio)
    # Negative control: without that system prompt the card's tokens differ, so the match above means something.
    assert list(ours.token_ids) != card_tokens_qwen25(full, [user], audio)
