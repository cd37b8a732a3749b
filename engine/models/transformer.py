"""What the ViT architectures (SETR, Segmenter) share: the timm ViT encoder's facts and attention probes, and the
import of mmsegmentation's VisionTransformer checkpoints."""

from __future__ import annotations

import math
from typing import ClassVar

from engine.mmseg_plan import CheckpointMismatch, ImportPlan, KeyMap, State, count, has_prefix, shape
from engine.models.base import Probe, SegModel
from engine.timm_backbones import IMAGENET_MEAN, IMAGENET_STD
from engine.vit import ViTEncoder

# (width, depth, patch size) of mmseg's ViTs -> timm's model of that shape (attention heads: T 3, S 6,
# B 12, L 16, as in mmseg's configs; timm's `test_vit` for tests).
_VIT_NAMES = {
    (192, 12, 16): "vit_tiny_patch16_384",
    (384, 12, 16): "vit_small_patch16_384",
    (768, 12, 16): "vit_base_patch16_384",
    (1024, 24, 16): "vit_large_patch16_384",
    (384, 12, 8): "vit_small_patch8_224",
    (768, 12, 8): "vit_base_patch8_224",
    (64, 6, 16): "test_vit",
}

_VIT_HEADS = {"vit_tiny_patch16_384": 3, "vit_small_patch16_384": 6, "vit_base_patch16_384": 12,
              "vit_large_patch16_384": 16, "vit_small_patch8_224": 6, "vit_base_patch8_224": 12, "test_vit": 2}

# mmseg 1.x's VisionTransformer builds its patch embedding without a bias by default (`patch_bias=False`).
_VIT_ZERO = ("backbone.patch_embed.proj.bias",)


def mmseg_transformer_layer_rules(mmseg: str, ours: str) -> tuple[tuple[str, str], ...]:
    """mmcv's TransformerEncoderLayer (`ln1`, `attn.attn` = nn.MultiheadAttention, `ln2`, `ffn`) against
    timm's Block (`norm1`, `attn.qkv`/`attn.proj`, `norm2`, `mlp.fc1`/`mlp.fc2`); q, k, v stacked alike."""
    return (
        (f"{mmseg}.{{i}}.ln1.", f"{ours}.{{i}}.norm1."),
        (f"{mmseg}.{{i}}.ln2.", f"{ours}.{{i}}.norm2."),
        (f"{mmseg}.{{i}}.attn.attn.in_proj_weight", f"{ours}.{{i}}.attn.qkv.weight"),
        (f"{mmseg}.{{i}}.attn.attn.in_proj_bias", f"{ours}.{{i}}.attn.qkv.bias"),
        (f"{mmseg}.{{i}}.attn.attn.out_proj.", f"{ours}.{{i}}.attn.proj."),
        (f"{mmseg}.{{i}}.ffn.layers.0.0.", f"{ours}.{{i}}.mlp.fc1."),
        (f"{mmseg}.{{i}}.ffn.layers.1.", f"{ours}.{{i}}.mlp.fc2."),
    )


# mmseg's VisionTransformer against timm's.
MMSEG_VIT_RULES = (
    ("backbone.patch_embed.projection.", "backbone.patch_embed.proj."),
    *mmseg_transformer_layer_rules("backbone.layers", "backbone.blocks"),
    ("backbone.ln1.", "backbone.norm."),  # the final norm (Segmenter's `final_norm=True`)
)


def mmseg_vit(state: State, hints: dict, *, with_cls_token: bool, interpolate_mode: str) -> tuple[str, int, int]:
    """The timm name of an mmseg checkpoint's ViT, the image size its position embeddings were trained for
    (a square grid of patches), and its depth. mmseg's ViT before its refactoring (mmseg < 0.14) used
    timm's names, which need no renaming."""
    if hints.get("with_cls_token", with_cls_token) != with_cls_token:
        raise CheckpointMismatch(f"the config sets with_cls_token={hints['with_cls_token']}; the architecture is only "
                                 f"defined {'with' if with_cls_token else 'without'} the class token")
    if hints.get("interpolate_mode", interpolate_mode) != interpolate_mode:
        raise CheckpointMismatch(f"the config resizes position embeddings with interpolate_mode="
                                 f"{hints['interpolate_mode']!r}; SegAssist's model of this architecture uses "
                                 f"{interpolate_mode!r}")
    timm_named = "backbone.patch_embed.proj.weight" in state
    width, _, patch, _ = shape(state, f"backbone.patch_embed.{'proj' if timm_named else 'projection'}.weight")
    depth = count(state, "backbone.blocks." if timm_named else "backbone.layers.")
    name = _VIT_NAMES.get((width, depth, patch))
    if name is None:
        known = ", ".join(f"{n} ({w} wide, {d} blocks, patch {p})" for (w, d, p), n in _VIT_NAMES.items())
        raise CheckpointMismatch(f"a ViT {width} wide with {depth} blocks and patch size {patch}, which no timm model "
                                 f"we map to has; supported: {known}")
    heads = _VIT_HEADS.get(name)
    if "encoder_heads" in hints and heads is not None and hints["encoder_heads"] != heads:
        raise CheckpointMismatch(f"the config's ViT has {hints['encoder_heads']} attention heads; timm's {name} of "
                                 f"the same width and depth has {heads}")
    tokens = shape(state, "backbone.pos_embed")[1] - 1  # mmseg always keeps a class-token slot
    grid = math.isqrt(tokens)
    if grid * grid != tokens:
        raise CheckpointMismatch(f"position embeddings for {tokens} patches, not a square grid")
    return name, grid * patch, depth


def mmseg_out_indices(hints: dict, default: tuple[int, ...], depth: int) -> tuple[int, ...]:
    """The backbone's `out_indices` from the config text, else `default` (those of mmseg's configs for ViT-L's
    24 blocks); `CheckpointMismatch` when neither applies (the weights do not say which blocks the heads read)."""
    given = hints.get("out_indices")
    if given is not None:
        given = tuple(i + depth if i < 0 else i for i in given)
        if not given or not all(0 <= i < depth for i in given):
            raise CheckpointMismatch(f"the config's out_indices {hints['out_indices']} do not fit a ViT of {depth} "
                                     f"blocks")
        return given
    if depth == 24:
        return default
    raise CheckpointMismatch(f"which of the ViT's {depth} blocks the heads read is not in the checkpoint: no config "
                             f"text names the backbone's out_indices, and mmseg's configs only fix them for 24 blocks")


class ViTSegModel(SegModel):
    """A timm ViT encoder (`self.backbone`, a `ViTEncoder`) and heads; the encoder's self-attention is explained."""

    encoder_family = "vit"
    small_backbones = ("vit_tiny_patch16_384", "vit_small_patch16_384")
    mmseg_backbones = "VisionTransformer"
    mmseg_key_rules = MMSEG_VIT_RULES
    # mmseg's normalisation for the architecture (its configs'; Segmenter's differ)
    mmseg_normalization: ClassVar[tuple[tuple[float, ...], tuple[float, ...]]] = (IMAGENET_MEAN, IMAGENET_STD)
    backbone: ViTEncoder

    @classmethod
    def _mmseg_plan(cls, backbone: str, num_classes: int, options: dict, *, rules: tuple[tuple[str, str], ...] = (),
                    unused_by_mmseg: tuple[str, ...] = ()) -> ImportPlan:
        """The plan of a ViT checkpoint: `rules` after `mmseg_key_rules`, mmseg's normalisation."""
        return ImportPlan(cls.arch, backbone, num_classes, options, KeyMap((*cls.mmseg_key_rules, *rules)),
                          cls.mmseg_normalization, unused_by_mmseg=unused_by_mmseg, zero_when_absent=_VIT_ZERO)

    @staticmethod
    def _is_mmseg_vit(state: State) -> bool:
        return has_prefix(state, "backbone.patch_embed.")

    def probes(self) -> list[Probe]:
        enc = self.backbone
        return [Probe("token_attention", f"attention/layer{i}", b.attn, enc.prefix_tokens, enc.patch_size)
                for i, b in enumerate(enc.blocks)]
