"""Which device a run asks for, said in one line before anything loads."""

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
