import json
import os

import torch
from transformers import Qwen3OmniMoeForConditionalGeneration, Qwen3OmniMoeProcessor

from omni_caption.model import LoadOptions, load_model
from omni_caption.model.tiny_random import NONSENSE_NOTICE, tiny_random_dir


def test_saved_folder_has_every_artefact(tiny_dir):
    names = {p.name for p in tiny_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json",
            "chat_template.jinja", "generation_config.json"} <= names
    assert NONSENSE_NOTICE in (tiny_dir / "README.md").read_text()


def test_config_has_all_parts_with_consistent_shapes(tiny_dir):
    config = json.loads((tiny_dir / "config.json").read_text())
    thinker, talker = config["thinker_config"], config["talker_config"]
    assert thinker["audio_config"]["output_dim"] == thinker["text_config"]["hidden_size"]
    assert thinker["text_config"]["num_experts"] > 1  # MoE thinker
    assert talker["text_config"]["num_local_experts"] > 1  # MoE talker (saved under its attribute-map name)
    assert talker["text_config"]["vocab_size"] == config["code2wav_config"]["codebook_size"] + 1024
    assert talker["code_predictor_config"]["hidden_size"] == talker["text_config"]["hidden_size"]
    assert set(talker["speaker_id"]) == {"ethan", "chelsie", "aiden"}


def test_reload_through_from_pretrained_with_talker(tiny_dir):
    model = Qwen3OmniMoeForConditionalGeneration.from_pretrained(tiny_dir, enable_audio_output=True)
    assert model.has_talker
    assert model.thinker.model.audio_tower is not None
    assert model.talker.code_predictor is not None
    assert model.code2wav is not None
    # Weights come back exactly: compare against a second load.
    again = Qwen3OmniMoeForConditionalGeneration.from_pretrained(tiny_dir, enable_audio_output=True)
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name


def test_thinker_only_load_drops_talker(tiny):
    assert not tiny.model.has_talker
    assert not hasattr(tiny.model, "talker")
    assert tiny.dtype == "float32" and tiny.device == "cpu"


def test_voice_load_keeps_talker(cache_dir):
    omni = load_model("tiny-random", LoadOptions(device="cpu", cache_dir=cache_dir, voice=True))
    assert omni.model.has_talker


def test_tokenizer_roles_are_single_tokens_and_specials_match_config(tiny_dir):
    processor = Qwen3OmniMoeProcessor.from_pretrained(tiny_dir)
    tok = processor.tokenizer
    config = json.loads((tiny_dir / "config.json").read_text())
    for role, key in (("user", "user_token_id"), ("assistant", "assistant_token_id"), ("system", "system_token_id")):
        ids = tok(role)["input_ids"]
        assert ids == [config[key]]
    assert len(tok("\n")["input_ids"]) == 1
    assert tok.convert_tokens_to_ids("<|audio_pad|>") == config["thinker_config"]["audio_token_id"]
    assert tok.convert_tokens_to_ids("<|im_end|>") == config["im_end_token_id"]
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "audio", "audio": "x"}]}],
                                         add_generation_prompt=True, tokenize=False)
    assert text == "<|im_start|>user\n<|audio_start|><|audio_pad|><|audio_end|><|im_end|>\n<|im_start|>assistant\n"


def test_build_is_cached_and_deterministic(tiny_dir, tmp_path):
    stamp = (tiny_dir / "model.safetensors").stat().st_mtime_ns
    assert tiny_random_dir(tiny_dir.parent) == tiny_dir
    assert (tiny_dir / "model.safetensors").stat().st_mtime_ns == stamp  # not rebuilt
    previous = os.umask(0o027)
    try:
        other = tiny_random_dir(tmp_path)
    finally:
        os.umask(previous)
    # The umask's mode, not mkdtemp's 0700: a cache folder a team shares stays readable by the group.
    assert other.stat().st_mode & 0o777 == 0o750 and [p.name for p in tmp_path.iterdir()] == [other.name]
    ours = Qwen3OmniMoeForConditionalGeneration.from_pretrained(tiny_dir).state_dict()
    theirs = Qwen3OmniMoeForConditionalGeneration.from_pretrained(other).state_dict()
    for name, tensor in ours.items():
        assert torch.equal(tensor, theirs[name]), name
        assert torch.isfinite(tensor).all(), name


def test_talker_expert_weights_are_initialised(tiny_dir):
    model = Qwen3OmniMoeForConditionalGeneration.from_pretrained(tiny_dir)
    for name, param in model.talker.named_parameters():
        if ".experts." in name:
            assert 0.005 < param.float().std() < 1.0, name


def test_model_label_says_nonsense(tiny):
    assert "nonsense" in tiny.model_label
    assert tiny.is_nonsense


def test_thinker_talker_code2wav_generate_speech(cache_dir):
    # The whole Thinker-Talker path, as the model card runs it, works on tiny-random.
    import numpy as np

    omni = load_model("tiny-random", LoadOptions(device="cpu", cache_dir=cache_dir, voice=True))
    proc = omni.processor
    text = proc.apply_chat_template([{"role": "user", "content": [{"type": "audio", "audio": "x"}]}],
                                    add_generation_prompt=True, tokenize=False)
    inputs = proc(text=[text], audio=[np.zeros(16000, dtype=np.float32)], return_tensors="pt", padding=True)
    inputs.pop("num_audio_tokens", None)
    torch.manual_seed(0)
    text_ids, audio = omni.model.generate(**inputs, speaker="chelsie", thinker_max_new_tokens=4,
                                          thinker_eos_token_id=omni.model.config.im_end_token_id,
                                          talker_max_new_tokens=4)
    assert text_ids.shape[1] > inputs["input_ids"].shape[1]
    assert audio is not None and audio.numel() > 0


def test_a_built_model_is_readable_by_whom_the_umask_allows(tmp_path, tiny_dir):
    """safetensors writes weights 0600: a team's shared cache folder kept its tiny model to its first user."""
    import stat

    from safetensors.torch import save_file

    from omni_caption.model.tiny_build import cached_build

    def build(staging):
        save_file({"w": torch.zeros(2)}, str(staging / "model.safetensors"))
        (staging / "config.json").write_text("{}")

    previous = os.umask(0o022)
    try:
        built = cached_build(tmp_path / "shared" / "tiny", build)
    finally:
        os.umask(previous)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in built.iterdir()} == {
        "model.safetensors": 0o644, "config.json": 0o644}
    # The cache the suite built, under the suite's umask: no file is kept from others more than it says.
    umask = os.umask(0)
    os.umask(umask)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask for p in tiny_dir.iterdir() if p.is_file())
