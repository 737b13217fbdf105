import pytest

from omni_caption.model import PRESETS, UnknownModelError, resolve_model


@pytest.mark.parametrize("name,hub_id", [
    ("captioner", "Qwen/Qwen3-Omni-30B-A3B-Captioner"),
    ("thinking", "Qwen/Qwen3-Omni-30B-A3B-Thinking"),
    ("instruct", "Qwen/Qwen3-Omni-30B-A3B-Instruct"),
])
def test_presets_resolve_to_qwen_hub_ids(name, hub_id):
    source = resolve_model(name)
    assert source.location == hub_id and not source.is_local and source.preset is PRESETS[name]


def test_local_folder_with_config(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    source = resolve_model(str(tmp_path))
    assert source.is_local and source.location == str(tmp_path)


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(UnknownModelError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_any_hub_id_passes_through():
    assert resolve_model("someone/my-omni-finetune").location == "someone/my-omni-finetune"


@pytest.mark.parametrize("spec", ["foo", "./missing/folder", "a/b/c"])
def test_unknown_model_is_one_clear_line(spec):
    with pytest.raises(UnknownModelError) as info:
        resolve_model(spec)
    assert "\n" not in str(info.value) and spec in str(info.value)


def test_tiny_random_resolves_into_cache_dir(cache_dir, tiny_dir):
    source = resolve_model("tiny-random", cache_dir)
    assert source.is_tiny_random and source.location == str(tiny_dir)
