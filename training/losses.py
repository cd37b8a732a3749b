"""Losses: cross-entropy over labelled pixels, auxiliary heads, EncNet's semantic-encoding loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine import IGNORE_INDEX

AUX_WEIGHT = 0.4  # every "aux*" output (DeepLabV3+/EncNet/CCNet's FCN head, SETR's per-layer heads)
SE_WEIGHT = 0.2  # EncNet's class-presence loss


def labelled_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the labelled pixels (labels != 255); 0 when none is labelled.

    Averaging over labelled pixels only (rather than all pixels) keeps the loss scale independent of how
    much of an image is labelled, so a few strokes weigh as much per pixel as a full label map.
    """
    total = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (labels != IGNORE_INDEX).sum().clamp(min=1)


def presence_targets(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """`[B, K]` float: 1 where class k occurs among the labelled pixels of image b (255 ignored)."""
    b = labels.shape[0]
    flat = labels.reshape(b, -1)
    valid = flat != IGNORE_INDEX
    index = torch.where(valid, flat, torch.zeros_like(flat))
    counts = torch.zeros(b, num_classes, device=labels.device).scatter_add_(1, index, valid.float())
    return (counts > 0).float()


def segmentation_loss(outputs: dict[str, torch.Tensor], labels: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The weighted sum over a model's `forward_train` outputs, and each term (for logging).

    `"out"`: cross-entropy; `"aux*"`: cross-entropy x 0.4 each; `"se"`: binary cross-entropy of class
    presence x 0.2.
    """
    terms: dict[str, torch.Tensor] = {}
    total = labels.new_zeros((), dtype=torch.float32)
    for key, value in outputs.items():
        if key == "se":
            target = presence_targets(labels, value.shape[1])
            term, weight = F.binary_cross_entropy_with_logits(value.float(), target), SE_WEIGHT
        elif key == "out" or key.startswith("aux"):
            term, weight = labelled_cross_entropy(value, labels), 1.0 if key == "out" else AUX_WEIGHT
        else:
            raise ValueError(f"forward_train returned an output {key!r} that no loss is defined for")
        terms[key] = term.detach()
        total = total + weight * term
    return total, terms
