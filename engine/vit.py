"""timm Vision Transformers as segmentation encoders: any input size, patch features of chosen layers."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from timm.layers import Attention, resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer
from torch import nn

# VIT_BACKBONES: the ones offered and tested; any timm VisionTransformer with absolute position embeddings works.
from engine.timm_backbones import VIT_BACKBONES, create_timm_backbone

# Resized position embeddings kept per encoder (one per grid size, dtype and device seen recently).
_POS_CACHE_SIZE = 8


class ViTEncoder(VisionTransformer):
    """A timm VisionTransformer whose forward returns patch feature maps `[B, C, h, w]` of chosen blocks.

    Built by `create_vit_encoder`: timm constructs (and loads) the model, this class adds the
    segmentation forward. Position embeddings are resized from the pretraining grid to the input's patch
    grid; the input's height and width must be multiples of the patch size (`SegModel` pads to it).
    Features are block outputs before the final norm, except the last block's when `final_norm` is set.
    """

    out_indices: tuple[int, ...]  # blocks whose outputs `forward` returns, in this order
    keep_prefix_tokens: bool  # whether the class (and register) tokens take part in attention
    final_norm: bool
    interpolate_mode: str  # of the position embeddings: "bilinear" or "bicubic"
    pos_prefix: int  # leading entries of `pos_embed` that belong to prefix tokens

    @property
    def patch_size(self) -> int:
        return self.patch_embed.patch_size[0]

    @property
    def prefix_tokens(self) -> int:
        """How many tokens precede the patch tokens in the sequence the blocks see."""
        return self.num_prefix_tokens if self.keep_prefix_tokens else 0

    def select_layers(self, indices: tuple[int, ...]) -> None:
        """Return the outputs of blocks `indices` (in this order) and remove the blocks after the last."""
        indices = check_layer_indices("out_indices", indices, len(self.blocks), "this encoder")
        self.out_indices = indices
        self.blocks = self.blocks[: max(indices) + 1]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        tokens, (h, w) = self.embed(x)
        last = len(self.blocks) - 1
        feats = {}
        for i, block in enumerate(self.blocks):
            tokens = block(tokens)
            if i in self.out_indices:
                feats[i] = self.to_map(self.norm(tokens) if self.final_norm and i == last else tokens, h, w)
        return [feats[i] for i in self.out_indices]

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Tokens `[B, prefix + h*w, C]` with position embeddings, and the patch grid `(h, w)`."""
        x = self.patch_embed(x)  # [B, h, w, C]
        b, h, w, c = x.shape
        x = x.reshape(b, h * w, c)
        pos = self.position_embedding((h, w))
        x = x + pos[:, self.pos_prefix :]
        if self.keep_prefix_tokens and self.num_prefix_tokens:
            tokens = (self.cls_token, getattr(self, "dist_token", None), self.reg_token)  # timm's order
            prefix = [t.expand(b, -1, -1) for t in tokens if t is not None]
            prefix = torch.cat(prefix, dim=1)
            if self.pos_prefix:
                prefix = prefix + pos[:, : self.pos_prefix]
            x = torch.cat([prefix, x], dim=1)
        return self.norm_pre(self.pos_drop(x)), (h, w)

    def to_map(self, tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Patch tokens of a sequence as a feature map `[B, C, h, w]` (prefix tokens dropped)."""
        x = tokens[:, self.prefix_tokens :]
        return x.reshape(x.shape[0], h, w, x.shape[-1]).permute(0, 3, 1, 2)

    def position_embedding(self, grid: tuple[int, int]) -> torch.Tensor:
        """`pos_embed` resized to a patch grid `(h, w)`; its prefix entries are kept as they are.

        Resized embeddings are cached per grid while that is valid: not while autograd needs the graph
        to `pos_embed`, not while exporting or compiling, and keyed on the parameter's version.
        """
        pos = self.pos_embed
        compiling = torch.compiler.is_compiling()
        if not compiling and tuple(grid) == tuple(self.patch_embed.grid_size):
            return pos
        # Inference tensors (weights made under inference_mode) keep no version counter to key a cache on.
        if compiling or pos.is_inference() or (torch.is_grad_enabled() and pos.requires_grad):
            return self._resize_pos_embed(pos, grid)
        key = (tuple(grid), pos.dtype, pos.device, pos._version, pos.data_ptr(), torch.is_inference_mode_enabled())
        cache = self.__dict__.setdefault("_pos_cache", {})
        if key not in cache:
            if len(cache) >= _POS_CACHE_SIZE:
                del cache[next(iter(cache))]
            with torch.no_grad():
                cache[key] = self._resize_pos_embed(pos, grid)
        return cache[key]

    def _resize_pos_embed(self, pos: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        # timm's resampling without antialiasing: plain bilinear/bicubic as mmseg resizes (timm's default,
        # antialias=True, differs from it at small grids).
        return resample_abs_pos_embed(pos, list(grid), list(self.patch_embed.grid_size),
                                      num_prefix_tokens=self.pos_prefix, interpolation=self.interpolate_mode,
                                      antialias=False)


def create_vit_encoder(name: str, pretrained: bool | str | Path = False, *, keep_prefix_tokens: bool,
                       final_norm: bool, interpolate_mode: str, img_size: int | None = None,
                       drop_path_rate: float = 0.0) -> ViTEncoder:
    """A timm VisionTransformer `name` as an encoder returning the last block's output (see `select_layers`).

    `keep_prefix_tokens=False` drops the class token after the position embeddings (the blocks never see
    it); `final_norm` applies the final norm to the last block's output. `img_size` sets the pretraining
    grid of the position embeddings (timm's default for `name` when None). `pretrained` is False, True
    (timm's download) or a path to a local weights file.
    """
    kwargs = dict(num_classes=0, dynamic_img_size=True, drop_path_rate=drop_path_rate)
    if img_size is not None:
        kwargs["img_size"] = img_size
    model = _create_vit(name, pretrained, kwargs)
    # Drop what the segmentation forward never uses, so that every parameter is trained.
    final = model.norm if not isinstance(model.norm, nn.Identity) else model.fc_norm
    model.norm = final if final_norm else nn.Identity()
    model.fc_norm = nn.Identity()
    model.attn_pool = None
    pos_prefix = 0 if model.no_embed_class else model.num_prefix_tokens
    if not keep_prefix_tokens:
        model.cls_token, model.reg_token = None, None
        if hasattr(model, "dist_token"):
            model.dist_token = None
    model.__class__ = ViTEncoder
    model.out_indices = (len(model.blocks) - 1,)
    model.keep_prefix_tokens = keep_prefix_tokens
    model.final_norm = final_norm
    model.interpolate_mode = interpolate_mode
    model.pos_prefix = pos_prefix
    return model


def _create_vit(name: str, pretrained: bool | str | Path, kwargs: dict) -> VisionTransformer:
    """timm's model `name`; `ValueError` unless it is a VisionTransformer with absolute position embeddings
    and standard attention blocks."""
    examples = ", ".join(VIT_BACKBONES)
    if not isinstance(name, str) or not timm.is_model(name):
        raise ValueError(f"unknown ViT backbone {name!r}; accepted: timm VisionTransformer names, e.g. {examples}")
    try:
        model = create_timm_backbone(name, pretrained, **kwargs)
    except TypeError as exc:  # other model families reject the ViT keywords
        raise ValueError(f"backbone {name!r} is not a timm VisionTransformer ({exc}); e.g. {examples}") from exc
    problem = None
    if not isinstance(model, VisionTransformer):
        problem = f"it is a {type(model).__name__}, not a VisionTransformer"
    elif model.pos_embed is None:
        problem = "it has no absolute position embeddings"
    elif not all(isinstance(b.attn, Attention) for b in model.blocks):
        problem = "its blocks do not use timm's standard Attention"
    elif model.patch_embed.patch_size[0] != model.patch_embed.patch_size[1]:
        problem = "its patches are not square"
    if problem:
        raise ValueError(f"backbone {name!r} cannot serve as a segmentation encoder: {problem}; e.g. {examples}")
    return model


def scaled_layers(paper: tuple[int, ...], depth: int) -> tuple[int, ...]:
    """The paper's block indices for ViT-L's 24 blocks, scaled to an encoder of `depth` blocks."""
    return tuple(dict.fromkeys(max(0, int((i + 1) * depth / 24 + 0.5) - 1) for i in paper))


def check_layer_indices(option: str, indices: tuple[int, ...] | None, depth: int, backbone: str,
                        paper: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """`indices` as a tuple of distinct block indices in `0..depth-1` (None: the paper's, scaled to `depth`);
    a `ValueError` that suggests values otherwise."""
    if indices is None and paper is not None:
        indices = scaled_layers(paper, depth)
    ok = isinstance(indices, list | tuple) and len(indices) > 0 and all(
        isinstance(i, int) and not isinstance(i, bool) and 0 <= i < depth for i in indices
    ) and len(set(indices)) == len(indices)
    if ok:
        return tuple(indices)
    hint = ""
    if paper is not None:
        hint = f"; the paper's {paper} for 24 blocks would be {option}={scaled_layers(paper, depth)} here"
    raise ValueError(f"{option}={indices!r} does not fit backbone {backbone!r} with {depth} blocks: give distinct "
                     f"block indices in 0..{depth - 1}{hint}")
