"""Prepared single-row model inputs, batched on demand and moved to the model's device.

Each clip goes through the processor alone (batched, the feature extractor
zero-pads short clips before its STFT, so their last frame differs from the
clip alone). A row is a dict of tensors with a leading batch dimension of 1;
`batch_rows` pads any subset of rows into one batch, so a fixed batch and the
refill engine's prefill groups are built the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

Row = dict  # str -> torch.Tensor of batch 1, on the CPU

_LEFT_PADDED = {"input_ids", "attention_mask"}
_RIGHT_PADDED = {"input_features", "feature_attention_mask"}


def batch_rows(rows: list[Row], pad_id: int | None) -> dict:
    """Rows as one batch: text left-padded (generation continues at the right edge), audio features
    right-padded and masked (the feature mask says where each clip ends)."""
    import torch
    import torch.nn.functional as F

    def pad(tensors, value, left: bool):
        width = max(t.shape[-1] for t in tensors)
        return torch.cat([F.pad(t, (width - t.shape[-1], 0) if left else (0, width - t.shape[-1]), value=value)
                          for t in tensors])

    batch = {}
    for key in rows[0]:
        tensors = [row[key] for row in rows]
        if key == "input_ids":
            batch[key] = pad(tensors, pad_id if pad_id is not None else 0, left=True)
        elif key in _LEFT_PADDED:
            batch[key] = pad(tensors, 0, left=True)
        elif key in _RIGHT_PADDED:
            batch[key] = pad(tensors, 0, left=False)
        else:
            batch[key] = torch.cat(tensors)
    return batch


def to_device(batch: dict, device: "torch.device | str", dtype: "torch.dtype") -> dict:
    """Floating tensors in the model's dtype, all on `device`; to a GPU through pinned memory, asynchronously,
    so the copy of the next prefill's audio features does not stall the host."""
    import torch

    device = torch.device(device)
    pinned = device.type == "cuda" and torch.cuda.is_available()
    moved = {}
    for key, value in batch.items():
        if value.is_floating_point():
            value = value.to(dtype)
        if pinned and value.device.type == "cpu":
            value = value.pin_memory()
        moved[key] = value.to(device, non_blocking=pinned)
    return moved


def feature_lengths(rows: list[Row]):
    """Mel frames per row (a 1D tensor), or None for text-only rows."""
    import torch

    if "feature_attention_mask" not in rows[0]:
        return None
    return torch.cat([row["feature_attention_mask"].sum(-1) for row in rows])
