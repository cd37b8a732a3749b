"""Normalisation of RGB images for a model: the one definition, for inference, explanations and training."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def preprocess(images: torch.Tensor | np.ndarray, mean: Sequence[float] | torch.Tensor,
               std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """RGB on 0-255, `[B, H, W, 3]` or one image `[H, W, 3]` (uint8 or float, tensor or array), as the
    normalised float32 batch `[B, 3, H, W]` a model takes: `(x - mean) / std` per channel, on the images'
    device."""
    x = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected RGB images [B, H, W, 3] or [H, W, 3], got shape {list(x.shape)}")
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return (x.permute(0, 3, 1, 2).float() - m) / s
