"""Model families: presets, detection from config.json, labels, per-family options and refusals."""

import json
import shutil

import numpy as np
import pytest

from omni_caption.model import PRESETS, AutWindows, DecodingOptions, Prompt, UnknownModelError, generate_batch
from omni_caption.model import resolve_model
from omni_caption.model.families import UnsupportedFeatureError, detect_family
from omni_caption.model.family_qwen25 import QWEN25_SYSTEM_PROMPT
from omni_caption.model.generation import prepare_inputs


@pytest.mark.parametrize("name,hub_id", [("qwen2.5-omni-3b", "Qwen/Qwen2.5-Omni-3B"),
                                         ("qwen2.5-omni-7b", "Qwen/Qwen2.5-Omni-7B")])
def test_qwen25_presets_resolve_to_hub_ids(name, hub_id):
    source = resolve_model(name)
    assert source.location == hub_id and not source.is_local and source.preset is PRESETS[name]
    assert detect_family(source).name == "qwen2.5-omni"


def test_tiny_random_25_resolves_into_cache_dir(cache_dir, tiny25_dir):
    source = resolve_model("tiny-random-2.5", cache_dir)
    assert source.is_tiny_random and source.location == str(tiny25_dir)


def test_local_folder_family_comes_from_its_config(family_preset, cache_dir, tmp_path):
    folder = tmp_path / "my-finetune"  # a name that says nothing: only config.json can tell
    shutil.copytree(resolve_model(family_preset, cache_dir).location, folder)
    source = resolve_model(str(folder))
    expected = {"tiny-random": "qwen3-omni", "tiny-random-2.5": "qwen2.5-omni"}[family_preset]
    assert source.preset is None and detect_family(source).name == expected


def test_unknown_model_type_is_refused_in_one_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    with pytest.raises(UnknownModelError, match="'whisper' is not a supported Qwen-Omni family") as info:
        detect_family(resolve_model(str(tmp_path)))
    assert "\n" not in str(info.value)


def test_label_names_the_family_and_size_of_local_folders(omni):
    size = sum(p.numel() for p in omni.model.parameters()) / 1e6
    assert f"({omni.family.name}, {size:.1f}M params)" in omni.model_label and "nonsense" in omni.model_label
    assert omni.model_label.startswith(f"omni-caption/{omni.source.spec}@")


def test_qwen25_prompts_carry_the_official_system_prompt(tiny25, tiny):
    text = tiny25.processor.tokenizer.decode(prepare_inputs(tiny25, None, [Prompt(text="hi")])["input_ids"][0])
    assert QWEN25_SYSTEM_PROMPT in text
    own = tiny25.processor.tokenizer.decode(prepare_inputs(tiny25, None, [Prompt(text="hi", system="Be brief.")])
                                            ["input_ids"][0])
    assert QWEN25_SYSTEM_PROMPT not in own and "Be brief." in own
    # Qwen3-Omni gets no system prompt it did not ask for.
    assert "system" not in tiny.processor.tokenizer.decode(prepare_inputs(tiny, None, [Prompt(text="hi")])
                                                          ["input_ids"][0])


def test_qwen25_keeps_clips_longer_than_30_s_whole(tiny25):
    """The Qwen2.5 processor pads and truncates to Whisper's 30 s by default: every second must reach the model."""
    long = (0.1 * np.random.default_rng(0).standard_normal(16000 * 45)).astype(np.float32)
    short = long[:16000 * 3]
    inputs = prepare_inputs(tiny25, [long, short], Prompt())
    audio_tokens = (inputs["input_ids"] == tiny25.processor.audio_token_id).sum(-1).tolist()
    assert audio_tokens == [45 * 25, 3 * 25]  # 25 encoder tokens per second
    assert inputs["feature_attention_mask"].sum(-1).tolist() == [4500, 300]


@pytest.mark.parametrize("windows", [AutWindows(seconds=4), AutWindows(per_clip=((2,),))])
def test_qwen25_refuses_encoder_windows_in_one_line(tiny25, windows):
    clip = np.zeros(32000, dtype=np.float32)
    with pytest.raises(UnsupportedFeatureError, match="fixed 2 s chunks") as info:
        generate_batch(tiny25, [clip], Prompt(), DecodingOptions(max_new_tokens=2), windows)
    assert "\n" not in str(info.value) and "Qwen3-Omni" in str(info.value)


def test_qwen3_still_takes_encoder_windows(tiny):
    clip = np.zeros(32000, dtype=np.float32)
    assert generate_batch(tiny, [clip], Prompt(), DecodingOptions(max_new_tokens=2), AutWindows(seconds=4))


@pytest.mark.parametrize("choice", ["static", "refill"])
def test_engines_are_refused_for_qwen25_and_auto_keeps_generate(tiny25, choice):
    from omni_caption.model.decode_runtime import make_decoder

    with pytest.raises(ValueError, match=f"--decoder {choice}: the engines are built for Qwen3-Omni"):
        make_decoder(tiny25, choice)
    assert make_decoder(tiny25, "auto") is None
