"""Validation: whole images (sliding windows when large) through the model, scored over labelled pixels."""

from __future__ import annotations

import contextlib

import torch

from engine import SegModel
from training.data import Sample
from training.distributed import Runtime, sum_all
from training.metrics import confusion_matrix, scores
from training.schedule import family


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 `[B, H, W, 3]` -> normalised float `[B, 3, H, W]`."""
    return (images.permute(0, 3, 1, 2).float() - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def autocast(rt: Runtime):
    dtype = rt.autocast_dtype
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(rt.device.type, dtype=dtype)


WHOLE_IMAGE_LIMIT = 1024  # CNNs validate whole images up to this side (or twice the crop size)


def whole_view_limit(model: SegModel, window: int) -> int:
    """The largest side validation feeds the model whole: 1024 (or twice `window`) for CNNs, `window` for
    ViT models, whose position embeddings were trained at the crop's patch grid."""
    return window if family(model.arch) != "cnn" else max(WHOLE_IMAGE_LIMIT, 2 * window)


@torch.no_grad()
def predict_logits(model: SegModel, x: torch.Tensor, window: int) -> torch.Tensor:
    """Logits `[1, K, H, W]`. CNNs see the whole image when its sides are at most 1024 (or twice `window`);
    ViT models, whose position embeddings were trained at the crop's patch grid, and larger images go
    through windows of `window` pixels overlapping by a third, their logits averaged."""
    h, w = x.shape[-2:]
    if max(h, w) <= whole_view_limit(model, window):
        return model(x).float()
    stride = max(1, window * 2 // 3)
    logits = torch.zeros(1, model.num_classes, h, w, device=x.device)
    count = torch.zeros(1, 1, h, w, device=x.device)
    ys = sorted({min(y, max(h - window, 0)) for y in range(0, max(h - window, 0) + stride, stride)})
    xs = sorted({min(v, max(w - window, 0)) for v in range(0, max(w - window, 0) + stride, stride)})
    for y in ys:
        for v in xs:
            tile = x[..., y:y + window, v:v + window]
            logits[..., y:y + tile.shape[-2], v:v + tile.shape[-1]] += model(tile).float()
            count[..., y:y + tile.shape[-2], v:v + tile.shape[-1]] += 1
    return logits / count


def evaluate(model: SegModel, samples: list[Sample], rt: Runtime, mean: torch.Tensor, std: torch.Tensor,
             window: int) -> dict:
    """mIoU, per-class IoU, pixel accuracy and the confusion matrix over `samples` (shared out among the
    processes, the confusion matrices summed)."""
    k = model.num_classes
    confusion = torch.zeros(k, k, dtype=torch.int64, device=rt.device)
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        for s in samples[rt.rank::rt.world_size]:
            image = torch.from_numpy(s.read_image()).unsqueeze(0).to(rt.device)
            with autocast(rt):
                logits = predict_logits(model, normalize(image, mean, std), window)
            labels = torch.from_numpy(s.labels).to(rt.device)
            confusion += confusion_matrix(logits[0].argmax(0), labels, k)
    finally:
        for m, mode in modes.items():
            m.training = mode
    confusion = sum_all(rt, confusion).cpu()
    return {**scores(confusion), "confusion": confusion.tolist()}
