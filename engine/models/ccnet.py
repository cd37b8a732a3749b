"""CCNet (Huang et al., ICCV 2019): recurrent criss-cross attention.

Each pixel attends to the H + W - 1 pixels of its row and column. Two passes with shared weights give
every pixel a path to every other one, at a cost of O(HW (H + W)) instead of a non-local block's
O((HW)^2): no HW x HW matrix is ever formed.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.layers import ConvBNReLU, DecodeHead
from engine.mmseg_plan import CheckpointMismatch, State, has_prefix, is_int, shape
from engine.models.base import Probe
from engine.models.cnn import CNNSegModel

# Aggregation runs over this many value channels at a time, bounding the temporaries it needs.
_CHANNEL_CHUNK = 64


def criss_cross_weights(query: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention weights of every pixel over its column and its row: `[B, H, W, H]` and `[B, H, W, W]`.

    Entry `[b, h, w, g]` of the first is the weight pixel (h, w) gives to (g, w); entry `[b, h, w, v]` of
    the second the weight it gives to (h, v). The pixel itself counts once (in its row); one softmax
    runs over all H + W entries, so the two sum to 1 per pixel.
    """
    h = query.shape[2]
    # Column energies are computed column-major ([B, W, H, G]) and returned as a permuted view.
    e_col = torch.matmul(query.permute(0, 3, 2, 1), key.permute(0, 3, 1, 2))  # [B, W, H, G]
    e_row = torch.matmul(query.permute(0, 2, 3, 1), key.permute(0, 2, 1, 3))  # [B, H, W, V]
    if e_col.dtype in (torch.float16, torch.bfloat16):
        e_col, e_row = e_col.float(), e_row.float()  # softmax statistics in float32
    inplace = not torch.is_grad_enabled()
    idx = torch.arange(h, device=query.device)
    own = idx[:, None] == idx[None, :]  # (h, g) with g == h, broadcast over B and W
    neg = torch.finfo(e_col.dtype).min  # finite: -inf would give NaN under reduced precision
    e_col = e_col.masked_fill_(own, neg) if inplace else e_col.masked_fill(own, neg)
    lse = torch.logsumexp(torch.stack([e_col.logsumexp(-1).transpose(1, 2), e_row.logsumexp(-1)]), dim=0)
    lse_col, lse_row = lse.transpose(1, 2).unsqueeze(-1), lse.unsqueeze(-1)
    if inplace:
        w_col, w_row = e_col.sub_(lse_col).exp_(), e_row.sub_(lse_row).exp_()
    else:
        w_col, w_row = (e_col - lse_col).exp(), (e_row - lse_row).exp()
    return w_col.permute(0, 2, 1, 3), w_row


def criss_cross_aggregate(value: torch.Tensor, w_col: torch.Tensor, w_row: torch.Tensor) -> torch.Tensor:
    """`out[b, c, h, w] = sum_g w_col[b,h,w,g] value[b,c,g,w] + sum_v w_row[b,h,w,v] value[b,c,h,v]`."""
    w_col_t = w_col.to(value.dtype).permute(0, 2, 3, 1)  # [B, W, G, H]: per column, G -> H
    w_row_t = w_row.to(value.dtype).transpose(-1, -2)  # [B, H, V, W]: per row, V -> W
    # Without autograd, write each channel chunk straight into the output.
    out = None if torch.is_grad_enabled() or torch.compiler.is_compiling() else torch.empty_like(value)
    chunks = []
    for c0 in range(0, value.shape[1], _CHANNEL_CHUNK):
        v = value[:, c0 : c0 + _CHANNEL_CHUNK]
        rows = torch.matmul(v.permute(0, 2, 1, 3), w_row_t).permute(0, 2, 1, 3)  # [B, c, H, W]
        cols = torch.matmul(v.permute(0, 3, 1, 2), w_col_t).permute(0, 2, 3, 1)  # [B, c, H, W]
        if out is None:
            chunks.append(rows + cols)
        else:
            torch.add(rows, cols, out=out[:, c0 : c0 + _CHANNEL_CHUNK])
    return torch.cat(chunks, dim=1) if out is None else out


class CrissCrossAttention(nn.Module):
    """Criss-cross attention: query/key 1x1 convs to C/8, value 1x1 conv to C, `gamma` (init 0) scaling
    the aggregated values that are added to the input."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        self.query_conv = nn.Conv2d(channels, channels // reduction, 1)
        self.key_conv = nn.Conv2d(channels, channels // reduction, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def weights(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Column and row attention weights of every pixel (see `criss_cross_weights`)."""
        return criss_cross_weights(self.query_conv(x), self.key_conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_col, w_row = self.weights(x)
        out = criss_cross_aggregate(self.value_conv(x), w_col, w_row)
        del w_col, w_row
        if torch.is_grad_enabled():
            return x + self.gamma * out
        return out.mul_(self.gamma).add_(x)


class CCHead(DecodeHead):
    """3x3 conv to `channels`, criss-cross attention `recurrence` times (shared weights), 3x3 conv,
    concatenation with the backbone feature, 3x3 conv, classifier."""

    def __init__(self, in_channels: int, num_classes: int, channels: int, recurrence: int, dropout: float):
        super().__init__(channels, num_classes, dropout)
        self.recurrence = recurrence
        self.convs = nn.Sequential(ConvBNReLU(in_channels, channels, 3), ConvBNReLU(channels, channels, 3))
        self.cca = CrissCrossAttention(channels)
        self.conv_cat = ConvBNReLU(in_channels + channels, channels, 3)

    def attend(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The inputs of each criss-cross pass, the first one being the reduced backbone feature."""
        inputs = [self.convs[0](x)]
        for _ in range(self.recurrence - 1):
            inputs.append(self.cca(inputs[-1]))
        return inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convs[0](x)
        for _ in range(self.recurrence):
            y = self.cca(y)
        y = self.conv_cat(torch.cat([x, self.convs[1](y)], dim=1))
        return self.cls_seg(y)


class CCNet(CNNSegModel):
    """CCNet. Options: `output_stride`, `channels` (512), `recurrence` (R, 2), `aux`."""

    arch = "ccnet"
    default_backbone = "resnet101c"
    test_config = dict(backbone="test_resnet", channels=16, aux_channels=8)
    mmseg_heads = "CCHead"
    # mmcv's Scale module keeps criss-cross attention's gamma as `gamma.scale`.
    mmseg_key_rules = (("decode_head.cca.gamma.scale", "decode_head.cca.gamma"),)

    def __init__(self, num_classes: int, backbone: str, *, pretrained: bool | str = False,
                 output_stride: int = 8, channels: int = 512, recurrence: int = 2, aux: bool = True,
                 aux_channels: int = 256, dropout: float = 0.1):
        if recurrence < 1:
            raise ValueError(f"recurrence must be >= 1, got {recurrence}")
        super().__init__(num_classes, backbone, pretrained=pretrained, output_stride=output_stride, aux=aux,
                         aux_channels=aux_channels, dropout=dropout)
        self.decode_head = CCHead(self.spec.channels[self.spec.last], num_classes, channels, recurrence, dropout)

    def decode(self, feats: list[torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        return {"out": self.decode_head(feats[self.spec.last])}

    def probes(self) -> list[Probe]:
        return [Probe("criss_cross", "attention/pass", self.decode_head.cca)]

    @classmethod
    def detect_mmseg(cls, state: State) -> bool:
        return has_prefix(state, "decode_head.cca.")

    @classmethod
    def mmseg_head_options(cls, state: State, hints: dict, output_stride: int) -> dict:
        recurrence = hints.get("recurrence", 2)  # CCHead's default
        channels = shape(state, "decode_head.convs.0.conv.weight")[0]
        if not is_int(recurrence) or recurrence < 1:
            raise CheckpointMismatch(f"the config sets recurrence={recurrence!r}")
        return dict(channels=channels, recurrence=recurrence)
