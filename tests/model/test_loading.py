"""Loading a model: the device a run asks for, and a damaged checkpoint, each said in one line."""

import os

import pytest
import torch

from omni_caption.model.hub import ModelLoadError
from omni_caption.model.loading import pick_device


@pytest.fixture
def gpus(monkeypatch):
    def visible(count):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    return visible


@pytest.mark.parametrize("device, count, picked", [
    ("auto", 0, "cpu"), ("auto", 2, "cuda"), ("cpu", 2, "cpu"), ("cuda", 1, "cuda"), ("cuda:1", 2, "cuda:1"),
])
def test_devices_that_exist_are_picked(gpus, device, count, picked):
    gpus(count)
    assert pick_device(device) == picked


@pytest.mark.parametrize("device, count, message", [
    ("tpu", 1, "--device tpu: choose auto, cpu, cuda or cuda:N"),
    ("cuda:x", 1, "--device cuda:x: choose auto, cpu, cuda or cuda:N"),
    ("cuda", 0, "--device cuda: no CUDA GPU is visible to torch"),
    ("cuda:3", 1, "--device cuda:3: torch sees 1 CUDA GPU (cuda:0 only; CUDA_VISIBLE_DEVICES renumbers them "
                  "from 0)"),
    ("cuda:2", 2, "--device cuda:2: torch sees 2 CUDA GPUs (cuda:0 to cuda:1;"),
])
def test_a_device_that_does_not_exist_is_one_line(gpus, device, count, message):
    gpus(count)
    with pytest.raises(ModelLoadError) as error:
        pick_device(device)
    assert str(error.value).startswith(message)


def test_a_model_on_cuda_n_makes_that_gpu_current_before_it_loads(gpus, monkeypatch, cache_dir, tiny_dir):
    """Calls that name no device (empty_cache, a compiled graph's stream) then act on the model's GPU, not cuda:0.
    On this CPU machine the move itself fails after the check; the order is what is tested."""
    from omni_caption.model.loading import LoadOptions, load_model

    gpus(2)
    current = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: current.append(str(device)))

    def no_gpu_here(self, *args, **kwargs):
        raise RuntimeError(f"moved to {args[0]} with current device {current}")

    monkeypatch.setattr(torch.nn.Module, "to", no_gpu_here)
    with pytest.raises(RuntimeError, match=r"moved to cuda:1 with current device \['cuda:1'\]"):
        load_model("tiny-random", LoadOptions(device="cuda:1", dtype="float32", cache_dir=cache_dir))


@pytest.fixture
def model_copy(tiny_dir, tmp_path):
    import shutil

    return shutil.copytree(tiny_dir, tmp_path / "model")


def test_weights_cut_short_by_an_interrupted_download_are_named_with_what_to_do(model_copy, cache_dir):
    from omni_caption.model import LoadOptions, load_model

    weights = model_copy / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    with pytest.raises(ModelLoadError, match=r"model\.safetensors is damaged or incomplete .*; download it again$"):
        load_model(str(model_copy), LoadOptions(device="cpu", cache_dir=cache_dir))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file: run as a user (CI runs as root)")
def test_weights_this_user_may_not_read_are_named_not_called_missing(model_copy, cache_dir):
    """safetensors calls a weights file another user saved 0600 "No such file or directory"."""
    from omni_caption.model import LoadOptions, load_model

    (model_copy / "model.safetensors").chmod(0o000)
    with pytest.raises(ModelLoadError,
                       match=r": this user may not read model\.safetensors \(its owner can `chmod a\+r` it\)$"):
        load_model(str(model_copy), LoadOptions(device="cpu", cache_dir=cache_dir))


@pytest.mark.parametrize("damage", [b"{not json", b"\xff\xfe"])
def test_a_damaged_config_is_named(model_copy, cache_dir, damage):
    from omni_caption.model import LoadOptions, load_model
    from omni_caption.model.presets import UnknownModelError

    (model_copy / "config.json").write_bytes(damage)
    with pytest.raises(UnknownModelError, match=r"cannot read .*config\.json \("):
        load_model(str(model_copy), LoadOptions(device="cpu", cache_dir=cache_dir))
