"""Building blocks shared by the decode heads.

Parameter names follow mmsegmentation's (`X.conv.weight`, `X.bn.*`, `conv_seg`) so that its checkpoints
map onto ours by prefix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNReLU(nn.Module):
    """Conv (no bias), BatchNorm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, *, dilation: int = 1,
                 groups: int = 1, act: bool = True):
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SeparableConvBNReLU(nn.Module):
    """Depthwise conv-BN-ReLU then pointwise conv-BN-ReLU (DeepLabV3+'s separable convolution)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *, dilation: int = 1):
        super().__init__()
        self.depthwise_conv = ConvBNReLU(in_channels, in_channels, kernel_size, dilation=dilation,
                                         groups=in_channels)
        self.pointwise_conv = ConvBNReLU(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


def conv3x3(in_channels: int, out_channels: int, *, dilation: int = 1, separable: bool = True) -> nn.Module:
    """A 3x3 conv-BN-ReLU, depthwise-separable or plain."""
    if separable:
        return SeparableConvBNReLU(in_channels, out_channels, 3, dilation=dilation)
    return ConvBNReLU(in_channels, out_channels, 3, dilation=dilation)


class DecodeHead(nn.Module):
    """Base of every head: `Dropout2d` then a 1x1 conv to class logits (mmseg's `cls_seg`).

    The input of `conv_seg` is the head's last feature map, which class-activation maps are taken from.
    """

    def __init__(self, channels: int, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def cls_seg(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_seg(self.dropout(x))


class FCNHead(DecodeHead):
    """`num_convs` 3x3 conv-BN-ReLU and a classifier: the auxiliary head (mmseg's FCNHead)."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 256, num_convs: int = 1,
                 dropout: float = 0.1):
        super().__init__(channels, num_classes, dropout)
        self.convs = nn.Sequential(
            *(ConvBNReLU(in_channels if i == 0 else channels, channels, 3) for i in range(num_convs))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls_seg(self.convs(x))


def resize(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bilinear resize of a feature map or logits to `size` (align_corners=False)."""
    if not torch.compiler.is_compiling() and tuple(x.shape[-2:]) == tuple(size):
        return x  # (skipped while exporting, where sizes are symbolic)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
