"""Attention windows of the AuT audio encoder: a fixed size per run, or aligned to pauses.

AuT turns log-mel (100 frames/s) into 13 tokens per 1 s conv chunk and attends
within windows of `n_window_infer` mel frames (800 = 8 s by default). The tower
copies that value at construction, so a run changes it on the tower itself;
pause-aligned windows go in as `cu_seqlens` (block-diagonal attention) with
every edge on the 1 s chunk grid and every window 1-8 chunks long.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

MEL_FRAMES_PER_CHUNK = 100  # one conv chunk = 1 s
MIN_WINDOW_CHUNKS, MAX_WINDOW_CHUNKS = 1, 8


@dataclass(frozen=True)
class AutWindows:
    """`seconds`: one window size for every clip; `per_clip`: window lengths in chunks, one list per clip."""

    seconds: int | None = None
    per_clip: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self):
        if self.seconds is not None and not MIN_WINDOW_CHUNKS <= self.seconds <= MAX_WINDOW_CHUNKS:
            raise ValueError(f"AuT window must be 1..8 s, not {self.seconds}")

    def for_clips(self, indices) -> "AutWindows":
        """The windows of a subset of the clips, in the order of `indices` (a retry, or one prefill group)."""
        if self.per_clip is None:
            return self
        return AutWindows(seconds=self.seconds, per_clip=tuple(self.per_clip[i] for i in indices))


def audio_tower(model):
    thinker = getattr(model, "thinker", model)
    return thinker.model.audio_tower


def windows_from_pauses(cuts_s: list[float], duration_s: float) -> tuple[int, ...]:
    """Window lengths (in 1 s chunks) whose edges are the pause cuts snapped to the chunk grid.

    `cuts_s` are pause times relative to the clip start. Windows longer than 8
    chunks are split evenly; cuts that would leave a window under 1 chunk are dropped.
    """
    chunks = max(1, math.ceil(duration_s - 1e-9))
    edges = [0]
    for cut in sorted(cuts_s):
        snapped = int(round(cut))
        if edges[-1] < snapped < chunks:
            edges.append(snapped)
    edges.append(chunks)
    windows: list[int] = []
    for a, b in zip(edges, edges[1:]):
        length = b - a
        pieces = math.ceil(length / MAX_WINDOW_CHUNKS)
        windows += [length // pieces + (1 if i < length % pieces else 0) for i in range(pieces)]
    return tuple(windows)


def cu_seqlens_for(feature_lens, per_clip: tuple[tuple[int, ...], ...], n_window: int = 50):
    """Cumulative token boundaries for the whole batch, as the tower expects them."""
    import torch
    from transformers.models.qwen3_omni_moe.modeling_qwen3_omni_moe import _get_feat_extract_output_lengths

    tokens_per_chunk = int(_get_feat_extract_output_lengths(torch.tensor(MEL_FRAMES_PER_CHUNK), n_window))
    lengths: list[int] = []
    for frames, windows in zip(feature_lens.tolist(), per_clip):
        total = int(_get_feat_extract_output_lengths(torch.tensor(frames), n_window))
        chunks = math.ceil(frames / MEL_FRAMES_PER_CHUNK)
        if sum(windows) != chunks:
            raise ValueError(f"windows cover {sum(windows)} chunks, the clip has {chunks}")
        used = 0
        for window in windows[:-1]:
            lengths.append(window * tokens_per_chunk)
            used += window * tokens_per_chunk
        lengths.append(total - used)
    return torch.tensor([0] + lengths, device=feature_lens.device).cumsum(-1, dtype=torch.int32)


@contextlib.contextmanager
def applied(model, windows: AutWindows | None, feature_lens=None):
    """Apply `windows` to the model's audio tower for the duration of one generate call."""
    if windows is None:
        yield
        return
    tower = audio_tower(model)
    previous = tower.n_window_infer
    handle = None
    if windows.seconds is not None:
        tower.n_window_infer = windows.seconds * MEL_FRAMES_PER_CHUNK
    if windows.per_clip is not None:
        cu_seqlens = cu_seqlens_for(feature_lens, windows.per_clip, tower.n_window).to(next(tower.parameters()).device)

        def inject(_module, args, kwargs):
            return args, {**kwargs, "cu_seqlens": cu_seqlens}

        handle = tower.register_forward_pre_hook(inject, with_kwargs=True)
    try:
        yield
    finally:
        tower.n_window_infer = previous
        if handle is not None:
            handle.remove()
