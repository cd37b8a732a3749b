"""BatchNorm statistics re-estimated on training images as inference sees them.

While training, BatchNorm's running statistics follow the training crops. A network trained from scratch
on few images is sensitive to how much of the image a view holds (its image pooling and padded borders
see another picture at 192 pixels than at 480x360), so the statistics of crops do not fit the whole
images it is validated and used on. On camvid-mini (deeplabv3plus/resnet18 from scratch, crop 192) the
model that scored mIoU 0.24 with its running statistics scored 0.55 with the statistics of the whole
training images; un-augmented 192-pixel crops gave 0.24 again, so the view size and not the photometric
augmentation is what differs.

So before each validation and before a model is written, the running mean and variance of the BatchNorm
layers that train are replaced by the exact statistics of their inputs over up to `limit` training images
viewed whole (centre-cropped to a common size within a batch, and to what validation sees at most),
in batches as in training, with BatchNorm normalising by the batch as it did while training. Weights are
untouched; a frozen backbone's statistics are kept.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from engine import SegModel
from engine.precision import autocast
from engine.preprocessing import preprocess
from training.data import Sample
from training.distributed import Runtime
from training.validate import whole_view_limit


def training_batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers that keep running statistics and are in training mode (a frozen backbone's are not)."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats]


def view_batches(samples: list[Sample], batch_size: int, max_side: int, limit: int, seed: int, *,
                 max_pixels: int | None = None) -> Iterator[np.ndarray]:
    """uint8 `[B, H, W, 3]` batches of up to `limit` images (a seeded choice), each batch of similar sizes
    centre-cropped to their common size and to at most `max_side` a side; never a batch of one image.
    A batch holds up to `batch_size` views and, beyond two, no more than `max_pixels` pixels."""
    if len(samples) < 2:
        return
    chosen = np.random.default_rng(seed).permutation(len(samples))[:max(limit, 2)]
    chosen = sorted(chosen.tolist(), key=lambda i: samples[i].labels.shape)
    size, budget = max(2, batch_size), max_pixels or float("inf")
    groups: list[list[int]] = [[]]
    for i in chosen:
        pixels = min(max_side, samples[i].labels.shape[0]) * min(max_side, samples[i].labels.shape[1])
        if len(groups[-1]) >= 2 and (len(groups[-1]) >= size or (len(groups[-1]) + 1) * pixels > budget):
            groups.append([])
        groups[-1].append(i)
    if len(groups) > 1 and len(groups[-1]) < 2:
        last = groups.pop()
        groups[-1] = groups[-1] + last
    for group in groups:
        h = min(max_side, *(samples[i].labels.shape[0] for i in group))
        w = min(max_side, *(samples[i].labels.shape[1] for i in group))
        views = []
        for i in group:
            image = samples[i].read_image()
            y0, x0 = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
            views.append(image[y0:y0 + h, x0:x0 + w])
        yield np.stack(views)


@torch.no_grad()
def recalibrate_batchnorm(model: SegModel, samples: list[Sample], rt: Runtime, mean: torch.Tensor,
                          std: torch.Tensor, window: int, batch_size: int, *, limit: int = 64, seed: int = 0,
                          ) -> int:
    """Set the running mean and variance of `model`'s training BatchNorm layers to the exact statistics of
    their inputs over whole views of up to `limit` training images; returns how many images were used
    (0: the statistics were left as they were: no such layer, fewer than two images, or `limit` 0).

    Every process uses the same images, so the statistics agree across processes without communication.
    """
    norms = training_batchnorms(model)
    if not norms or len(samples) < 2 or limit <= 0:
        return 0
    sums: dict[nn.Module, list] = {m: [0.0, 0.0, 0] for m in norms}

    def collect(module: nn.Module, args: tuple) -> None:
        x = args[0].detach()
        dims = [d for d in range(x.ndim) if d != 1]
        acc = sums[module]
        acc[0] = acc[0] + x.sum(dims, dtype=torch.float64)
        acc[1] = acc[1] + x.double().square().sum(dims)
        acc[2] += x.numel() // x.shape[1]

    hooks = [m.register_forward_pre_hook(collect) for m in norms]
    saved = {m: (m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in norms}
    modes = {m: m.training for m in model.modules()}
    model.eval()  # dropout and the like as at inference ...
    for m in norms:
        m.train()  # ... but BatchNorm normalising by the batch's statistics, as while training
    used = 0
    try:
        # at most the pixels of four training batches at once (whole images can be far larger than crops)
        for batch in view_batches(samples, batch_size, whole_view_limit(model, window), limit, seed,
                                  max_pixels=4 * max(2, batch_size) * window * window):
            with autocast(rt.device, rt.precision):
                model(preprocess(torch.from_numpy(batch).to(rt.device), mean, std))
            used += len(batch)
    finally:
        for h in hooks:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
        for m, (running_mean, running_var, tracked) in saved.items():  # the forwards' own updates undone
            m.running_mean.copy_(running_mean)
            m.running_var.copy_(running_var)
            m.num_batches_tracked.copy_(tracked)
    for m in norms:
        total, squares, count = sums[m]
        if count < 2:  # a layer the inference forward does not reach (an auxiliary head)
            continue
        mu = total / count
        var = (squares / count - mu.square()).clamp_min(0) * (count / (count - 1))
        m.running_mean.copy_(mu.to(m.running_mean.dtype))
        m.running_var.copy_(var.to(m.running_var.dtype))
    return used
