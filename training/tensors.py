"""Training-side tensors: uint8 crops to the network's normalised input, and autocast for the run's precision."""

from __future__ import annotations

import contextlib

import torch

from training.distributed import Runtime


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 `[B, H, W, 3]` -> normalised float `[B, 3, H, W]`."""
    return (images.permute(0, 3, 1, 2).float() - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def autocast(rt: Runtime):
    dtype = rt.autocast_dtype
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(rt.device.type, dtype=dtype)
