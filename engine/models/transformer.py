"""What the ViT architectures (SETR, Segmenter) share: the timm ViT encoder's facts and attention probes."""

from __future__ import annotations

from engine.models.base import Probe, SegModel
from engine.vit import ViTEncoder


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


class ViTSegModel(SegModel):
    """A timm ViT encoder (`self.backbone`, a `ViTEncoder`) and heads; the encoder's self-attention is explained."""

    encoder_family = "vit"
    small_backbones = ("vit_tiny_patch16_384", "vit_small_patch16_384")
    mmseg_key_rules = MMSEG_VIT_RULES
    backbone: ViTEncoder

    def probes(self) -> list[Probe]:
        enc = self.backbone
        return [Probe("token_attention", f"attention/layer{i}", b.attn, enc.prefix_tokens, enc.patch_size)
                for i, b in enumerate(enc.blocks)]
