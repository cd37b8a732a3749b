"""SETR (Zheng et al., CVPR 2021): a plain ViT encoder, no down-sampling after the patch embedding, and
three decoders: Naive (1x1 convs, one upsampling), PUP (progressive 2x upsampling), MLA (multi-level
feature aggregation)."""

from __future__ import annotations

import math

import torch
from torch import nn

from engine.layers import ConvBNReLU, DecodeHead, FCNHead
from engine.mmseg_plan import CheckpointMismatch, ImportPlan, State, count, has_prefix, is_int, shape
from engine.models.base import OptimizerDefaults
from engine.models.transformer import ViTSegModel, mmseg_out_indices, mmseg_vit
from engine.timm_backbones import backbone_normalization
from engine.vit import check_layer_indices, create_vit_encoder

# Layers the paper uses on ViT-L's 24 blocks (0-based block indices; the paper counts from 1).
NAIVE_AUX = (9, 14, 19)
PUP_AUX = (9, 14, 19, 23)
MLA_LAYERS = (5, 11, 17, 23)

# mmseg's SETR configs (ViT-L, 24 blocks): the backbone's `out_indices`; auxiliary head k reads output k.
_MMSEG_UP_OUT_INDICES = (9, 14, 19, 23)
_MMSEG_MLA_OUT_INDICES = (5, 11, 17, 23)


def channel_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """A LayerNorm over the channels of a feature map `[B, C, H, W]`."""
    return norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class SETRUPHead(DecodeHead):
    """LayerNorm, `num_convs` times (conv-BN-ReLU, bilinear upsampling by `up_scale`), classifier.

    Naive: one 1x1 conv and no upsampling before the classifier (the logits are upsampled x16, as in the
    paper); PUP: four 3x3 convs, each followed by a 2x upsampling.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: int, num_convs: int, kernel_size: int,
                 up_scale: int, dropout: float):
        super().__init__(channels, num_classes, dropout)
        self.norm = nn.LayerNorm(in_channels, eps=1e-6)
        self.up_convs = nn.ModuleList(
            nn.Sequential(
                ConvBNReLU(in_channels if i == 0 else channels, channels, kernel_size),
                nn.Upsample(scale_factor=up_scale, mode="bilinear", align_corners=False) if up_scale > 1
                else nn.Identity(),
            )
            for i in range(num_convs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = channel_norm(self.norm, x)
        for up_conv in self.up_convs:
            x = up_conv(x)
        return self.cls_seg(x)


class MLAModule(nn.Module):
    """1x1 conv per level, top-down running sum from the deepest level, 3x3 conv per sum.

    Outputs are ordered from the deepest level (its projection alone) to the shallowest (the sum of all).
    """

    def __init__(self, in_channels: int, channels: int, levels: int):
        super().__init__()
        self.channel_proj = nn.ModuleList(ConvBNReLU(in_channels, channels, 1) for _ in range(levels))
        self.feat_extract = nn.ModuleList(ConvBNReLU(channels, channels, 3) for _ in range(levels))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        projected = [proj(x) for proj, x in zip(self.channel_proj, feats, strict=True)]
        sums, total = [], None
        for x in reversed(projected):
            total = x if total is None else total + x
            sums.append(total)
        return [conv(s) for conv, s in zip(self.feat_extract, sums, strict=True)]


class MLANeck(nn.Module):
    """A LayerNorm per level, then `MLAModule`."""

    def __init__(self, in_channels: int, channels: int, levels: int):
        super().__init__()
        self.norm = nn.ModuleList(nn.LayerNorm(in_channels, eps=1e-6) for _ in range(levels))
        self.mla = MLAModule(in_channels, channels, levels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return self.mla([channel_norm(norm, x) for norm, x in zip(self.norm, feats, strict=True)])


class SETRMLAHead(DecodeHead):
    """Per level two 3x3 conv-BN-ReLU to `channels` and a 4x bilinear upsampling; the levels concatenated;
    a 1x1 classifier."""

    def __init__(self, mla_channels: int, channels: int, num_classes: int, levels: int, dropout: float):
        super().__init__(levels * channels, num_classes, dropout)
        self.up_convs = nn.ModuleList(
            nn.Sequential(
                ConvBNReLU(mla_channels, channels, 3),
                ConvBNReLU(channels, channels, 3),
                nn.Upsample(scale_factor=4, mode="bilinear", align_corners=False),
            )
            for _ in range(levels)
        )

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.cls_seg(torch.cat([up(x) for up, x in zip(self.up_convs, feats, strict=True)], dim=1))


class _SETR(ViTSegModel):
    """The ViT encoder every SETR variant shares."""

    default_backbone = "vit_large_patch16_384"
    family = "setr"

    def _init_encoder(self, backbone: str, pretrained: bool | str, *, keep_prefix_tokens: bool,
                      img_size: int | None, drop_path_rate: float) -> int:
        self.backbone = create_vit_encoder(
            backbone, pretrained, keep_prefix_tokens=keep_prefix_tokens, final_norm=False,
            interpolate_mode="bilinear", img_size=img_size, drop_path_rate=drop_path_rate,
        )
        self.size_divisor = self.backbone.patch_size
        self.normalization = backbone_normalization(self.backbone)
        return len(self.backbone.blocks)


class _SETRUp(_SETR):
    """Naive and PUP: a decode head on the last block, auxiliary heads on earlier blocks."""

    def _init_heads(self, decode_head: nn.Module, aux_heads: list[nn.Module] | None, aux_indices: tuple[int, ...],
                    depth: int) -> None:
        self.decode_head = decode_head
        self.aux_indices = aux_indices if aux_heads else ()
        self.auxiliary_head = nn.ModuleList(aux_heads) if aux_heads else None
        self.backbone.select_layers(tuple(sorted({*self.aux_indices, depth - 1})))

    @classmethod
    def _mmseg_up_kernel(cls, state: State) -> int | None:
        """The kernel size of an mmseg SETRUPHead's first conv (1: Naive, 3: PUP); None without that head."""
        if not (cls._is_mmseg_vit(state) and has_prefix(state, "decode_head.up_convs.")
                and has_prefix(state, "decode_head.norm.")):
            return None
        first = "decode_head.up_convs.0.0.conv.weight"
        return state[first].shape[-1] if first in state else 3

    @staticmethod
    def _mmseg_aux_options(state: State, hints: dict, depth: int) -> dict:
        """The auxiliary heads' blocks and convs (mmseg's configs: one head per `out_indices` entry but the last)."""
        aux = count(state, "auxiliary_head.")
        if not aux:
            return {}
        return {"aux_indices": mmseg_out_indices(hints, _MMSEG_UP_OUT_INDICES, depth)[:aux],
                "aux_num_convs": count(state, "auxiliary_head.0.up_convs.")}  # 2 in mmseg's ADE20K config

    def heads(self, feats: list[torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        by_index = dict(zip(self.backbone.out_indices, feats, strict=True))
        outs = {"out": self.decode_head(feats[-1])}
        if train and self.auxiliary_head is not None:
            for k, (i, head) in enumerate(zip(self.aux_indices, self.auxiliary_head, strict=True)):
                outs[f"aux{k}"] = head(by_index[i])
        return outs


class SETRNaive(_SETRUp):
    """SETR-Naive. Options: `channels` (256), `num_convs` and `up_scale` of the head (paper: one 1x1 conv-BN-ReLU,
    classifier, logits upsampled to the input: 1, 1; mmseg's configs: `up_scale=4`), `aux` heads of the same form
    with `aux_num_convs` convs on blocks `aux_indices` (0-based; default: the paper's layers 10/15/20 of ViT-L's
    24, scaled to the encoder's depth), `img_size` (pretraining grid of the position embeddings, timm's default
    when None), `drop_path_rate`, `dropout` (before the classifiers)."""

    arch = "setr_naive"
    # SGD lr 0.01, weight decay 0, heads x10, warm-up (SETR diverges above its rates).
    optimizer_defaults = OptimizerDefaults(sgd_lr=0.01, weight_decay=0.0, head_lr_mult=10.0, warmup=True)
    test_config = dict(backbone="test_vit", channels=16, aux_indices=(2, 3, 4))
    mmseg_heads = "SETRUPHead with 1x1 convs"


    def __init__(self, num_classes: int, backbone: str, *, pretrained: bool | str = False, channels: int = 256,
                 num_convs: int = 1, up_scale: int = 1, aux: bool = True, aux_indices: tuple[int, ...] | None = None,
                 aux_num_convs: int = 1, img_size: int | None = None, drop_path_rate: float = 0.0,
                 dropout: float = 0.0):
        super().__init__(num_classes)
        if min(num_convs, aux_num_convs, up_scale) < 1:
            raise ValueError(f"num_convs, aux_num_convs and up_scale must be >= 1, got {num_convs}, {aux_num_convs} "
                             f"and {up_scale}")
        depth = self._init_encoder(backbone, pretrained, keep_prefix_tokens=True, img_size=img_size,
                                   drop_path_rate=drop_path_rate)
        aux_indices = check_layer_indices("aux_indices", aux_indices, depth, backbone, NAIVE_AUX)
        width = self.backbone.embed_dim

        def head(convs: int) -> SETRUPHead:
            return SETRUPHead(width, num_classes, channels, convs, 1, up_scale, dropout)

        self._init_heads(head(num_convs), [head(aux_num_convs) for _ in aux_indices] if aux else None, aux_indices,
                         depth)

    @classmethod
    def detect_mmseg(cls, state: State) -> bool:
        return cls._mmseg_up_kernel(state) == 1

    @classmethod
    def plan_mmseg(cls, state: State, hints: dict) -> ImportPlan:
        backbone, img_size, depth = mmseg_vit(state, hints, with_cls_token=True, interpolate_mode="bilinear")
        up_scale = hints.get("up_scale", 4)  # SETRUPHead's default (not in the weights)
        if not is_int(up_scale) or up_scale < 1:
            raise CheckpointMismatch(f"the config sets up_scale={up_scale!r}")
        options = dict(
            channels=shape(state, "decode_head.up_convs.0.0.conv.weight")[0],
            num_convs=count(state, "decode_head.up_convs."),
            up_scale=up_scale,
            aux=count(state, "auxiliary_head.") > 0,
            img_size=img_size,
        )
        options.update(cls._mmseg_aux_options(state, hints, depth))
        return cls._mmseg_plan(backbone, shape(state, "decode_head.conv_seg.weight")[0], options)


class SETRPUP(_SETRUp):
    """SETR-PUP: LayerNorm, then log2(patch size) times (3x3 conv-BN-ReLU, 2x upsampling), classifier.
    Options: `channels` (256), `aux` heads on blocks `aux_indices` (0-based; default: the paper's layers
    10/15/20/24 of ViT-L's 24, scaled to the encoder's depth), each with `aux_num_convs` (3x3 conv-BN-ReLU,
    4x upsampling) as in mmseg, `img_size`, `drop_path_rate`, `dropout`."""

    arch = "setr_pup"
    optimizer_defaults = OptimizerDefaults(sgd_lr=0.001, weight_decay=0.0, head_lr_mult=10.0, warmup=True)
    test_config = dict(backbone="test_vit", channels=16, aux_indices=(2, 3, 4, 5))
    mmseg_heads = "SETRUPHead with 3x3 convs"


    def __init__(self, num_classes: int, backbone: str, *, pretrained: bool | str = False, channels: int = 256,
                 aux: bool = True, aux_indices: tuple[int, ...] | None = None, aux_num_convs: int = 1,
                 img_size: int | None = None, drop_path_rate: float = 0.0, dropout: float = 0.0):
        super().__init__(num_classes)
        depth = self._init_encoder(backbone, pretrained, keep_prefix_tokens=True, img_size=img_size,
                                   drop_path_rate=drop_path_rate)
        aux_indices = check_layer_indices("aux_indices", aux_indices, depth, backbone, PUP_AUX)
        width = self.backbone.embed_dim
        stages = max(1, round(math.log2(self.size_divisor)))
        decode_head = SETRUPHead(width, num_classes, channels, stages, 3, 2, dropout)
        aux_heads = [SETRUPHead(width, num_classes, channels, aux_num_convs, 3, 4, dropout) for _ in aux_indices]
        self._init_heads(decode_head, aux_heads if aux else None, aux_indices, depth)

    @classmethod
    def detect_mmseg(cls, state: State) -> bool:
        return cls._mmseg_up_kernel(state) not in (None, 1)

    @classmethod
    def plan_mmseg(cls, state: State, hints: dict) -> ImportPlan:
        backbone, img_size, depth = mmseg_vit(state, hints, with_cls_token=True, interpolate_mode="bilinear")
        if hints.get("up_scale", 2) != 2:
            raise CheckpointMismatch(f"the config sets up_scale={hints['up_scale']!r}; SETR-PUP upsamples x2")
        options = dict(channels=shape(state, "decode_head.up_convs.0.0.conv.weight")[0],
                       aux=count(state, "auxiliary_head.") > 0, img_size=img_size)
        options.update(cls._mmseg_aux_options(state, hints, depth))
        return cls._mmseg_plan(backbone, shape(state, "decode_head.conv_seg.weight")[0], options)


class SETRMLA(_SETR):
    """SETR-MLA: blocks `mla_indices` (0-based; default: the paper's layers 6/12/18/24 of ViT-L's 24, scaled to
    the encoder's depth; class token dropped before the blocks as in the authors' code), neck (LayerNorm, 1x1 to
    `mla_channels`, top-down sums, 3x3), per level two 3x3 convs to `mlahead_channels` and 4x upsampling,
    concatenation, 1x1 classifier. Options also: `aux` (a 1x1 classifier on each of the neck's levels),
    `img_size`, `drop_path_rate`, `dropout`."""

    arch = "setr_mla"
    optimizer_defaults = OptimizerDefaults(sgd_lr=0.002, weight_decay=0.0, head_lr_mult=10.0, warmup=True)
    test_config = dict(backbone="test_vit", mla_indices=(1, 2, 4, 5), mla_channels=16, mlahead_channels=8)
    mmseg_heads = "MLANeck + SETRMLAHead"


    def __init__(self, num_classes: int, backbone: str, *, pretrained: bool | str = False,
                 mla_indices: tuple[int, ...] | None = None, mla_channels: int = 256, mlahead_channels: int = 128,
                 aux: bool = True, img_size: int | None = None, drop_path_rate: float = 0.0, dropout: float = 0.1):
        super().__init__(num_classes)
        depth = self._init_encoder(backbone, pretrained, keep_prefix_tokens=False, img_size=img_size,
                                   drop_path_rate=drop_path_rate)
        mla_indices = check_layer_indices("mla_indices", mla_indices, depth, backbone, MLA_LAYERS)
        if len(mla_indices) != 4:
            raise ValueError(f"mla_indices must name 4 blocks (the four MLA levels), got {mla_indices!r}")
        self.backbone.select_layers(mla_indices)
        width = self.backbone.embed_dim
        self.neck = MLANeck(width, mla_channels, len(mla_indices))
        self.decode_head = SETRMLAHead(mla_channels, mlahead_channels, num_classes, len(mla_indices), dropout)
        self.auxiliary_head = nn.ModuleList(
            FCNHead(mla_channels, num_classes, mla_channels, num_convs=0, dropout=dropout) for _ in mla_indices
        ) if aux else None

    def heads(self, feats: list[torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        levels = self.neck(feats)
        outs = {"out": self.decode_head(levels)}
        if train and self.auxiliary_head is not None:
            for k, (head, level) in enumerate(zip(self.auxiliary_head, levels, strict=True)):
                outs[f"aux{k}"] = head(level)
        return outs

    @classmethod
    def detect_mmseg(cls, state: State) -> bool:
        return cls._is_mmseg_vit(state) and has_prefix(state, "neck.mla.")

    @classmethod
    def plan_mmseg(cls, state: State, hints: dict) -> ImportPlan:
        backbone, img_size, depth = mmseg_vit(state, hints, with_cls_token=False, interpolate_mode="bilinear")
        # mmseg 0.15 kept the per-level convs as `mlahead.{i}` (an MLAModule list); later versions as `up_convs.{i}`.
        old = "decode_head.mlahead.0.0.conv.weight" in state
        streams = "decode_head.mlahead." if old else "decode_head.up_convs."
        options = dict(
            mla_indices=mmseg_out_indices(hints, _MMSEG_MLA_OUT_INDICES, depth),
            mla_channels=shape(state, "neck.mla.channel_proj.0.conv.weight")[0],
            mlahead_channels=shape(state, f"{streams}0.0.conv.weight")[0],
            aux=count(state, "auxiliary_head.") > 0,
            img_size=img_size,
        )
        rules = (("decode_head.mlahead.{i}.", "decode_head.up_convs.{i}."),) if old else ()
        # mmseg's SETR-MLA drops the class token before the blocks (`with_cls_token=False`) but keeps it.
        return cls._mmseg_plan(backbone, shape(state, "decode_head.conv_seg.weight")[0], options, rules=rules,
                               unused_by_mmseg=("backbone.cls_token",))
