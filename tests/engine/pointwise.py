"""A model whose logits at a pixel depend on that pixel alone (a 1x1 convolution), for tiling tests."""

import torch
from torch import nn

from engine.models.base import SegModel


class _Features(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.conv(x)]


class PointwiseModel(SegModel):
    """Logits = a 1x1 convolution of the normalised image: no context, so tiling cannot change them."""

    def __init__(self, num_classes: int = 4, seed: int = 0):
        super().__init__(num_classes)
        torch.manual_seed(seed)
        self.backbone = _Features(num_classes)
        with torch.no_grad():
            self.backbone.conv.weight.mul_(4)
        self.normalization = ((127.5,) * 3, (64.0,) * 3)

    def heads(self, feats: list[torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        return {"out": feats[0]}


class PositionModel(SegModel):
    """Two classes whose logits depend on the column within the input, not on the image: seams between
    windows show as jumps unless the blending hides them."""

    def __init__(self):
        super().__init__(2)
        self.backbone = nn.Identity()

    def heads(self, feats, train):
        x = feats
        ramp = torch.linspace(-3, 3, x.shape[-1], device=x.device).expand(x.shape[0], 1, x.shape[-2], -1)
        return {"out": torch.cat([ramp, torch.zeros_like(ramp)], dim=1)}
