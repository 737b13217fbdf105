"""tiny-random-2.5: a complete Qwen2.5-Omni with random weights, saved and reloaded like a release."""

import json

import torch
from transformers import Qwen2_5OmniForConditionalGeneration, Qwen2_5OmniProcessor

from omni_caption.model.tiny_build import NONSENSE_NOTICE
from omni_caption.model.tiny_random_25 import tiny_random_25_dir


def test_saved_folder_has_every_artefact(tiny25_dir):
    names = {p.name for p in tiny25_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json", "chat_template.jinja",
            "generation_config.json", "spk_dict.pt"} <= names
    assert NONSENSE_NOTICE in (tiny25_dir / "README.md").read_text()


def test_config_has_all_parts_with_consistent_shapes(tiny25_dir):
    config = json.loads((tiny25_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_omni"
    thinker, talker, token2wav = config["thinker_config"], config["talker_config"], config["token2wav_config"]
    assert thinker["audio_config"]["output_dim"] == thinker["text_config"]["hidden_size"]
    assert talker["embedding_size"] == thinker["text_config"]["hidden_size"]  # talker reads thinker states
    assert token2wav["dit_config"]["num_embeds"] >= talker["vocab_size"]  # every code the talker emits embeds
    assert token2wav["dit_config"]["mel_dim"] == token2wav["bigvgan_config"]["mel_dim"]


def test_speakers_and_tokenizer_fit_the_thinker(tiny25_dir):
    processor = Qwen2_5OmniProcessor.from_pretrained(tiny25_dir)
    speakers = torch.load(tiny25_dir / "spk_dict.pt", weights_only=True)
    assert set(speakers) == {"Chelsie", "Ethan"}
    vocab = json.loads((tiny25_dir / "config.json").read_text())["thinker_config"]["text_config"]["vocab_size"]
    for params in speakers.values():
        # The start token is a thinker id the tokenizer never produces, as in the release.
        assert len(processor.tokenizer) <= params["bos_token"] < vocab
    for role in ("user", "assistant", "system", "\n"):
        assert len(processor.tokenizer(role)["input_ids"]) == 1
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "audio", "audio": "x"}]}],
                                         add_generation_prompt=True, tokenize=False)
    assert text == "<|im_start|>user\n<|audio_bos|><|AUDIO|><|audio_eos|><|im_end|>\n<|im_start|>assistant\n"


def test_reload_with_talker_and_build_is_deterministic(tiny25_dir, tmp_path):
    model = Qwen2_5OmniForConditionalGeneration.from_pretrained(tiny25_dir, enable_audio_output=True)
    assert model.has_talker and model.token2wav is not None and set(model.speaker_map) == {"Chelsie", "Ethan"}
    stamp = (tiny25_dir / "model.safetensors").stat().st_mtime_ns
    assert tiny_random_25_dir(tiny25_dir.parent) == tiny25_dir
    assert (tiny25_dir / "model.safetensors").stat().st_mtime_ns == stamp  # cached, not rebuilt
    theirs = Qwen2_5OmniForConditionalGeneration.from_pretrained(tiny_random_25_dir(tmp_path),
                                                                enable_audio_output=True).state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, theirs[name]), name
        assert torch.isfinite(tensor).all(), name
