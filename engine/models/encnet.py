"""EncNet (Zhang et al., CVPR 2018): the Context Encoding Module and the semantic-encoding (SE) loss."""

from __future__ import annotations

import math

import torch
from torch import nn

from engine.layers import ConvBNReLU, DecodeHead
from engine.mmseg_plan import State, has_prefix, shape
from engine.models.base import Probe
from engine.models.cnn import CNNSegModel


class Encoding(nn.Module):
    """The Encoding layer: K codewords `d_k` and smoothing factors `s_k`.

    For features `x_i` (C channels, N = H*W of them): soft assignments
    `a_ik = softmax_k(s_k * ||x_i - d_k||^2)` and residual encoders `e_k = sum_i a_ik (x_i - d_k)`.
    """

    def __init__(self, channels: int, num_codes: int):
        super().__init__()
        self.channels, self.num_codes = channels, num_codes
        bound = 1.0 / math.sqrt(num_codes * channels)
        self.codewords = nn.Parameter(torch.empty(num_codes, channels).uniform_(-bound, bound))
        self.scale = nn.Parameter(torch.empty(num_codes).uniform_(-1.0, 0.0))

    def assignments(self, x: torch.Tensor) -> torch.Tensor:
        """Soft assignments `[B, N, K]` for features `x` `[B, N, C]`."""
        codewords, scale = self.codewords.to(x.dtype), self.scale.to(x.dtype)
        # ||x - d||^2 = ||x||^2 - 2 x.d + ||d||^2, without a [B, N, K, C] intermediate.
        dist = (x * x).sum(-1, keepdim=True) - 2.0 * x @ codewords.t() + (codewords**2).sum(-1)
        return torch.softmax(dist * scale, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual encoders `[B, K, C]` for a feature map `x` `[B, C, H, W]`."""
        # Distances are differences of large sums: at least float32, also under autocast or a bf16 model.
        dtype = torch.promote_types(x.dtype, torch.float32)
        with torch.autocast(x.device.type, enabled=False):
            x = x.to(dtype).flatten(2).transpose(1, 2)  # [B, N, C]
            a = self.assignments(x)
            # sum_i a_ik (x_i - d_k) = (A^T X)_k - d_k sum_i a_ik
            e = a.transpose(1, 2) @ x - a.sum(1).unsqueeze(-1) * self.codewords.to(dtype)
        return e.to(self.codewords.dtype)


class EncModule(nn.Module):
    """1x1 projection, Encoding + BN1d over codewords + ReLU, mean over codewords -> `e` [B, C];
    featuremap attention `relu(x + x * sigmoid(FC(e)))`."""

    def __init__(self, channels: int, num_codes: int):
        super().__init__()
        self.encoding_project = ConvBNReLU(channels, channels, 1)
        self.encoding = nn.Sequential(Encoding(channels, num_codes), nn.BatchNorm1d(num_codes), nn.ReLU(inplace=True))
        self.fc = nn.Sequential(nn.Linear(channels, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.encoding(self.encoding_project(x)).mean(dim=1)
        gamma = self.fc(e)[:, :, None, None]
        return e, torch.relu(x + x * gamma)


class EncHead(DecodeHead):
    def __init__(self, in_channels: int, num_classes: int, channels: int, num_codes: int, dropout: float):
        super().__init__(channels, num_classes, dropout)
        self.bottleneck = ConvBNReLU(in_channels, channels, 3)
        self.enc_module = EncModule(channels, num_codes)
        self.se_layer = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Segmentation logits and class-presence (SE) logits `[B, num_classes]`."""
        e, x = self.enc_module(self.bottleneck(x))
        return self.cls_seg(x), self.se_layer(e)


class EncNet(CNNSegModel):
    """EncNet. Options: `output_stride`, `channels` (512), `num_codes` (K, 32), `aux`."""

    arch = "encnet"
    default_backbone = "resnet101c"
    test_config = dict(backbone="test_resnet", channels=16, num_codes=4, aux_channels=8)
    mmseg_heads = "EncHead"

    def __init__(self, num_classes: int, backbone: str, *, pretrained: bool | str = False,
                 output_stride: int = 8, channels: int = 512, num_codes: int = 32, aux: bool = True,
                 aux_channels: int = 256, dropout: float = 0.1):
        super().__init__(num_classes, backbone, pretrained=pretrained, output_stride=output_stride, aux=aux,
                         aux_channels=aux_channels, dropout=dropout)
        self.decode_head = EncHead(self.spec.channels[self.spec.last], num_classes, channels, num_codes, dropout)

    def decode(self, feats: list[torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        out, se = self.decode_head(feats[self.spec.last])
        return {"out": out, "se": se} if train else {"out": out}

    def probes(self) -> list[Probe]:
        return [Probe("codewords", "codeword", self.decode_head.enc_module.encoding[0])]

    @classmethod
    def detect_mmseg(cls, state: State) -> bool:
        return has_prefix(state, "decode_head.enc_module.")

    @classmethod
    def mmseg_head_options(cls, state: State, hints: dict, output_stride: int) -> dict:
        return dict(channels=shape(state, "decode_head.bottleneck.conv.weight")[0],
                    num_codes=shape(state, "decode_head.enc_module.encoding.0.codewords")[0])
