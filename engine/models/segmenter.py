"""Segmenter (Strudel et al., ICCV 2021): ViT patch embeddings decoded point-wise (linear) or by a mask
transformer that learns one embedding per class."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import nn

from engine.layers import FCNHead
from engine.mmseg_plan import ImportPlan, State, count, has_prefix, shape
from engine.models.base import OptimizerDefaults, Probe
from engine.models.transformer import ViTSegModel, mmseg_transformer_layer_rules, mmseg_vit
from engine.timm_backbones import backbone_normalization
from engine.vit import create_vit_encoder


class SegmenterMaskTransformerHead(nn.Module):
    """Mask transformer: patches projected to `embed_dims`, K learnable class embeddings appended, transformer
    layers, LayerNorm; patches and classes projected (no bias) and L2-normalised; masks = patches . classes^T,
    LayerNorm over the classes, as a map `[B, K, h, w]`."""

    def __init__(self, in_channels: int, num_classes: int, embed_dims: int, num_layers: int, num_heads: int,
                 drop_path_rate: float):
        super().__init__()
        self.num_classes = num_classes
        self.dec_proj = nn.Linear(in_channels, embed_dims)
        self.cls_emb = nn.Parameter(torch.empty(1, num_classes, embed_dims))
        rates = torch.linspace(0, drop_path_rate, num_layers).tolist()
        self.layers = nn.ModuleList(
            Block(embed_dims, num_heads, mlp_ratio=4.0, qkv_bias=True, drop_path=r, norm_layer=nn.LayerNorm)
            for r in rates
        )
        self.decoder_norm = nn.LayerNorm(embed_dims)
        self.patch_proj = nn.Linear(embed_dims, embed_dims, bias=False)
        self.classes_proj = nn.Linear(embed_dims, embed_dims, bias=False)
        self.mask_norm = nn.LayerNorm(num_classes)
        nn.init.trunc_normal_(self.cls_emb, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        x = self.dec_proj(x.flatten(2).transpose(1, 2))
        x = torch.cat([x, self.cls_emb.expand(b, -1, -1)], dim=1)
        for layer in self.layers:
            x = layer(x)
        x = self.decoder_norm(x)
        patches = F.normalize(self.patch_proj(x[:, : -self.num_classes]), dim=-1)
        classes = F.normalize(self.classes_proj(x[:, -self.num_classes :]), dim=-1)
        masks = self.mask_norm(patches @ classes.transpose(1, 2))  # [B, h*w, K]
        # Contiguous: upsampling the transposed view (strides K, 1, w*K, K) is several times slower.
        return masks.transpose(1, 2).reshape(b, self.num_classes, h, w).contiguous()


class _Segmenter(ViTSegModel):
    """The ViT encoder with its final norm, patch tokens only, bicubic position-embedding resizing."""

    default_backbone = "vit_base_patch16_384"
    family = "segmenter"
    # SGD lr 0.001, weight decay 0, one rate for all, warm-up.
    optimizer_defaults = OptimizerDefaults(sgd_lr=0.001, weight_decay=0.0, warmup=True)
    # Without stochastic depth, so that a training step reaches every parameter every time.
    test_config = dict(backbone="test_vit", drop_path_rate=0.0)
    mmseg_normalization = ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5))  # Segmenter's configs: mean = std = 127.5

    def _init_encoder(self, backbone: str, pretrained: bool | str, img_size: int | None, drop_path_rate: float):
        self.backbone = create_vit_encoder(
            backbone, pretrained, keep_prefix_tokens=True, final_norm=True, interpolate_mode="bicubic",
            img_size=img_size, drop_path_rate=drop_path_rate,
        )
        self.size_divisor = self.backbone.patch_size
        self.normalization = backbone_normalization(self.backbone)

    def heads(self, feats: list[torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        return {"out": self.decode_head(feats[-1])}


class SegmenterLinear(_Segmenter):
    """Segmenter with the linear decoder: a point-wise linear layer from patch embeddings to class logits.
    Options: `img_size` (pretraining grid of the position embeddings, timm's default when None),
    `drop_path_rate` (encoder), `dropout` (before the classifier)."""

    arch = "segmenter_linear"
    mmseg_heads = "FCNHead without convs"

    def __init__(self, num_classes: int, backbone: str, *, pretrained: bool | str = False,
                 img_size: int | None = None, drop_path_rate: float = 0.1, dropout: float = 0.0):
        super().__init__(num_classes)
        self._init_encoder(backbone, pretrained, img_size, drop_path_rate)
        width = self.backbone.embed_dim
        self.decode_head = FCNHead(width, num_classes, width, num_convs=0, dropout=dropout)

    @classmethod
    def detect_mmseg(cls, state: State) -> bool:
        return cls._is_mmseg_vit(state) and {k for k in state if k.startswith("decode_head.")} == {
            "decode_head.conv_seg.weight", "decode_head.conv_seg.bias"}

    @classmethod
    def plan_mmseg(cls, state: State, hints: dict) -> ImportPlan:
        backbone, img_size, _ = mmseg_vit(state, hints, with_cls_token=True, interpolate_mode="bicubic")
        return cls._mmseg_plan(backbone, shape(state, "decode_head.conv_seg.weight")[0], {"img_size": img_size})


class SegmenterMask(_Segmenter):
    """Segmenter with the mask transformer decoder. Options: `num_layers` (2), `embed_dims` and `num_heads` of
    the decoder (the encoder's when None), `img_size`, `drop_path_rate` (encoder and decoder)."""

    arch = "segmenter_mask"
    mmseg_heads = "SegmenterMaskTransformerHead"
    mmseg_key_rules = (*ViTSegModel.mmseg_key_rules,
                       *mmseg_transformer_layer_rules("decode_head.layers", "decode_head.layers"))

    def __init__(self, num_classes: int, backbone: str, *, pretrained: bool | str = False, num_layers: int = 2,
                 embed_dims: int | None = None, num_heads: int | None = None, img_size: int | None = None,
                 drop_path_rate: float = 0.1):
        super().__init__(num_classes)
        self._init_encoder(backbone, pretrained, img_size, drop_path_rate)
        width = self.backbone.embed_dim
        embed_dims = embed_dims or width
        num_heads = num_heads or self.backbone.blocks[0].attn.num_heads
        if num_layers < 1 or embed_dims % num_heads:
            raise ValueError(f"the mask transformer needs num_layers >= 1 and embed_dims divisible by num_heads, "
                             f"got num_layers={num_layers}, embed_dims={embed_dims}, num_heads={num_heads}")
        self.decode_head = SegmenterMaskTransformerHead(width, num_classes, embed_dims, num_layers, num_heads,
                                                        drop_path_rate)

    def cam_layer(self) -> nn.Module:
        # The decoder's final patch features: after them come only the class-embedding product and the
        # LayerNorm over classes, so they are the last per-location representation the labels are read from.
        return self.decode_head.patch_proj

    def probes(self) -> list[Probe]:
        return super().probes() + [
            Probe("token_attention", f"attention/decoder{j}", layer.attn, 0, self.backbone.patch_size)
            for j, layer in enumerate(self.decode_head.layers)
        ]

    @classmethod
    def detect_mmseg(cls, state: State) -> bool:
        return cls._is_mmseg_vit(state) and has_prefix(state, "decode_head.cls_emb")

    @classmethod
    def plan_mmseg(cls, state: State, hints: dict) -> ImportPlan:
        backbone, img_size, _ = mmseg_vit(state, hints, with_cls_token=True, interpolate_mode="bicubic")
        options = dict(
            num_layers=count(state, "decode_head.layers."),
            embed_dims=shape(state, "decode_head.dec_proj.weight")[0],
            img_size=img_size,
        )
        if "decoder_heads" in hints:  # not in the weights; mmseg's configs give the decoder the encoder's heads
            options["num_heads"] = hints["decoder_heads"]
        # mmseg's decode heads all build a 1x1 `conv_seg`; the mask transformer never uses it.
        return cls._mmseg_plan(backbone, shape(state, "decode_head.cls_emb")[1], options,
                               unused_by_mmseg=("decode_head.conv_seg.weight", "decode_head.conv_seg.bias"))
