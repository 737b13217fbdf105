"""The AuT encoder receives the windows we ask for, and they change its output."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from omni_caption.model import AutWindows, DecodingOptions, Prompt, generate_batch, windows_from_pauses
from omni_caption.model.aut_windows import applied, audio_tower, cu_seqlens_for


class TowerSpy:
    """Records the cu_seqlens that reach the encoder layers and the tower's output."""

    def __init__(self, model):
        tower = audio_tower(model)
        self.cu_seqlens, self.outputs = [], []
        self.handles = [
            tower.layers[0].register_forward_pre_hook(lambda m, args: self.cu_seqlens.append(args[1].clone())),
            tower.register_forward_hook(lambda m, args, out: self.outputs.append(out.last_hidden_state.clone())),
        ]

    def close(self):
        for h in self.handles:
            h.remove()


def tone(seconds):
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 0.7 * t)).astype(np.float32)


def run(tiny, audios, windows):
    spy = TowerSpy(tiny.model)
    try:
        generate_batch(tiny, audios, Prompt(), DecodingOptions(max_new_tokens=2), windows)
    finally:
        spy.close()
    return spy


def test_fixed_windows_reach_the_tower_and_change_its_output(tiny):
    audio = [tone(9.5)]  # 10 chunks: 9 full + a partial one
    one = run(tiny, audio, AutWindows(seconds=1))
    eight = run(tiny, audio, AutWindows(seconds=8))
    lengths_1 = torch.diff(one.cu_seqlens[0]).tolist()
    lengths_8 = torch.diff(eight.cu_seqlens[0]).tolist()
    assert lengths_1 == [13] * 9 + [lengths_1[-1]] and len(lengths_1) == 10
    assert lengths_8 == [104, sum(lengths_1) - 104]
    assert not torch.allclose(one.outputs[0], eight.outputs[0])
    assert audio_tower(tiny.model).n_window_infer == 800  # restored after the call


def test_pause_windows_reach_the_tower(tiny):
    audio = [tone(9.5), tone(4.2)]
    per_clip = (windows_from_pauses([2.9, 6.2], 9.5), windows_from_pauses([], 4.2))
    assert per_clip == ((3, 3, 4), (5,))
    spy = run(tiny, audio, AutWindows(per_clip=per_clip))
    lengths = torch.diff(spy.cu_seqlens[0]).tolist()
    total_a = 9 * 13 + lengths[2] - 13 * 3  # the last window holds the partial chunk
    assert lengths[:2] == [39, 39] and len(lengths) == 4
    assert sum(lengths[:3]) == total_a
    assert spy.outputs[0].shape[0] == sum(lengths)


def test_pause_windows_keep_batch_equal_to_single(tiny):
    audios = [tone(9.5), tone(4.2), tone(6.6)]
    per_clip = tuple(windows_from_pauses(c, len(a) / 16000) for c, a in zip(([3.1, 5.0], [2.2], []), audios))
    options = DecodingOptions(max_new_tokens=8)
    batched = generate_batch(tiny, audios, Prompt(), options, AutWindows(per_clip=per_clip))
    singles = [generate_batch(tiny, [a], Prompt(), options, AutWindows(per_clip=(w,)))[0]
               for a, w in zip(audios, per_clip)]
    assert [r.token_ids for r in batched] == [r.token_ids for r in singles]


def test_windows_must_cover_the_clip():
    with pytest.raises(ValueError, match="cover"):
        cu_seqlens_for(torch.tensor([950]), ((3, 3),))


def test_out_of_range_window_is_refused():
    with pytest.raises(ValueError):
        AutWindows(seconds=9)


@given(st.floats(min_value=0.2, max_value=30.0), st.lists(st.floats(min_value=-1, max_value=31), max_size=12))
def test_pause_windows_tile_the_chunk_grid(duration, cuts):
    windows = windows_from_pauses(cuts, duration)
    assert sum(windows) == max(1, int(np.ceil(duration - 1e-9)))
    assert all(1 <= w <= 8 for w in windows)


def test_applied_without_windows_is_a_no_op(tiny):
    with applied(tiny.model, None):
        assert audio_tower(tiny.model).n_window_infer == 800
