"""The contract every architecture fulfils: `forward`, `forward_train`, `config`."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from engine.layers import resize


def check_input(x: object) -> None:
    """`ValueError` unless `x` is a float tensor `[B, 3, H, W]`."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"expected a float tensor [B, 3, H, W], got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a float tensor [B, 3, H, W] (a batch of RGB images), got shape {list(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected a float tensor [B, 3, H, W] (normalised RGB), got dtype {x.dtype}")
    if x.shape[0] < 1 or x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"expected a non-empty image batch [B, 3, H, W], got shape {list(x.shape)}")


# How logits of a padded input come back to the input size.
# "crop": resized to the padded size, then the padding cropped off (SegAssist's own models);
# "mmseg": resized straight to the input size, padding included (mmsegmentation's rule, kept by imported models
# so that they compute mmseg's logits at every input size).
PadRule = Literal["crop", "mmseg"]
PAD_RULES: tuple[str, ...] = ("crop", "mmseg")


class SegModel(nn.Module):
    """A segmentation network: an encoder (`backbone`) and heads.

    Subclasses build `self.backbone` (returns a list of features) and implement `heads`. The base class
    checks the input, pads it bottom-right to `size_divisor`, and brings every spatial output back to the
    input size by `pad_rule` (see `PAD_RULES`).
    """

    arch: ClassVar[str] = ""  # set by @register_architecture
    default_backbone: ClassVar[str] = ""
    config: dict

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.size_divisor = 1
        self.pad_rule: PadRule = "crop"
        self.normalization: tuple[tuple[float, ...], tuple[float, ...]] = ((0.0,) * 3, (1.0,) * 3)

    def heads(self, feats: list[torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        """Logits `"out"` (and with `train`, the auxiliary outputs) at the features' resolution."""
        raise NotImplementedError

    def cam_layer(self) -> nn.Module:
        """The module whose input is the decoder's last feature map (for class-activation maps)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits `[B, num_classes, H, W]` for normalised images `[B, 3, H, W]`."""
        return self._run(x, train=False)["out"]

    def forward_train(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """`"out"` and the auxiliary outputs the architecture trains with, spatial ones at the input size."""
        return self._run(x, train=True)

    def _run(self, x: torch.Tensor, train: bool) -> dict[str, torch.Tensor]:
        check_input(x)
        h, w = x.shape[-2:]
        d = self.size_divisor
        if d > 1:
            x = F.pad(x, (0, (d - w % d) % d, 0, (d - h % d) % d))
        outs = self.heads(self.backbone(x), train)
        if self.pad_rule == "mmseg":
            return {k: resize(v, (h, w)) if v.dim() == 4 else v for k, v in outs.items()}
        size = x.shape[-2:]
        return {k: resize(v, size)[..., :h, :w] if v.dim() == 4 else v for k, v in outs.items()}
