"""DeepLabV3+ (Chen et al., ECCV 2018): atrous separable ASPP and a light decoder."""

from __future__ import annotations

import torch
from torch import nn

from engine.layers import ConvBNReLU, DecodeHead, conv3x3, resize
from engine.mmseg_plan import CheckpointMismatch, State, has_prefix, shape
from engine.models.cnn import CNNSegModel

ASPP_RATES = {16: (6, 12, 18), 8: (12, 24, 36)}


class DeepLabV3PlusHead(DecodeHead):
    """ASPP (image pooling, a 1x1 branch, three atrous 3x3 branches, fused), then the decoder: the
    stride-4 feature reduced to `c1_channels`, concatenated with the upsampled ASPP output, two 3x3 convs."""

    def __init__(self, in_channels: int, low_channels: int, num_classes: int, channels: int,
                 c1_channels: int, rates: tuple[int, ...], separable: bool, bottleneck_kernel: int,
                 dropout: float):
        super().__init__(channels, num_classes, dropout)
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvBNReLU(in_channels, channels, 1))
        self.aspp_modules = nn.ModuleList(
            [ConvBNReLU(in_channels, channels, 1)]
            + [conv3x3(in_channels, channels, dilation=r, separable=separable) for r in rates]
        )
        self.bottleneck = ConvBNReLU((len(rates) + 2) * channels, channels, bottleneck_kernel)
        self.c1_bottleneck = ConvBNReLU(low_channels, c1_channels, 1)
        self.sep_bottleneck = nn.Sequential(
            conv3x3(channels + c1_channels, channels, separable=separable),
            conv3x3(channels, channels, separable=separable),
        )

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        pooled = resize(self.image_pool(high), high.shape[-2:])
        aspp = self.bottleneck(torch.cat([pooled, *(m(high) for m in self.aspp_modules)], dim=1))
        low = self.c1_bottleneck(low)
        x = torch.cat([resize(aspp, low.shape[-2:]), low], dim=1)
        return self.cls_seg(self.sep_bottleneck(x))


class DeepLabV3Plus(CNNSegModel):
    """DeepLabV3+. Options: `output_stride` (16: ASPP rates 6/12/18, 8: 12/24/36), `channels` (paper 256,
    mmseg 512), `separable` (depthwise-separable 3x3 convs in ASPP and decoder), `aspp_bottleneck_kernel`
    (1 as in the paper, 3 as in mmseg), `aux` (auxiliary FCN head on the penultimate stage)."""

    arch = "deeplabv3plus"
    default_backbone = "xception65"
    test_config = dict(backbone="test_resnet", output_stride=8, channels=16, c1_channels=8, aux_channels=8)
    mmseg_heads = "DepthwiseSeparableASPPHead"

    def __init__(self, num_classes: int, backbone: str, *, pretrained: bool | str = False,
                 output_stride: int = 16, channels: int = 256, c1_channels: int = 48, separable: bool = True,
                 aspp_bottleneck_kernel: int = 1, aux: bool = True, aux_channels: int = 256,
                 dropout: float = 0.1):
        super().__init__(num_classes, backbone, pretrained=pretrained, output_stride=output_stride, aux=aux,
                         aux_channels=aux_channels, dropout=dropout)
        c = self.spec.channels
        self.decode_head = DeepLabV3PlusHead(
            c[self.spec.last], c[self.spec.low], num_classes, channels, c1_channels,
            ASPP_RATES[output_stride], separable, aspp_bottleneck_kernel, dropout,
        )

    def decode(self, feats: list[torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        return {"out": self.decode_head(feats[self.spec.low], feats[self.spec.last])}

    @classmethod
    def detect_mmseg(cls, state: State) -> bool:
        if not has_prefix(state, "decode_head.aspp_modules."):
            return False
        if not has_prefix(state, "decode_head.c1_bottleneck."):
            raise CheckpointMismatch("a DeepLabV3 checkpoint (ASPP head without the DeepLabV3+ decoder)")
        return True

    @classmethod
    def mmseg_head_options(cls, state: State, hints: dict, output_stride: int) -> dict:
        rates = (1, *ASPP_RATES[output_stride])
        if "aspp_dilations" in hints and tuple(hints["aspp_dilations"]) != rates:
            raise CheckpointMismatch(f"the config sets ASPP dilations {hints['aspp_dilations']!r}; at output stride "
                                     f"{output_stride} SegAssist's DeepLabV3+ uses {rates}")
        return dict(
            channels=shape(state, "decode_head.image_pool.1.conv.weight")[0],
            c1_channels=shape(state, "decode_head.c1_bottleneck.conv.weight")[0],
            separable=has_prefix(state, "decode_head.aspp_modules.1.depthwise_conv."),
            aspp_bottleneck_kernel=shape(state, "decode_head.bottleneck.conv.weight")[-1],
        )
