"""Validation metrics from a confusion matrix over labelled pixels."""

from __future__ import annotations

import numpy as np
import torch

from engine import IGNORE_INDEX


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """`[K, K]` int64 counts, rows = true class, columns = predicted class, over labelled pixels only."""
    valid = labels != IGNORE_INDEX
    index = labels[valid].long() * num_classes + predicted[valid].long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def scores(confusion: np.ndarray | torch.Tensor) -> dict:
    """mIoU, per-class IoU (None for a class neither labelled nor predicted), pixel accuracy."""
    cm = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    total = cm.sum()
    return {
        "miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else None,
        "pixel_accuracy": float(tp.sum() / total) if total else None,
        "per_class_iou": [None if np.isnan(v) else float(v) for v in iou],
    }
