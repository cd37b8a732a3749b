"""The contract every architecture fulfils: `forward`, `forward_train`, `config`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from engine.layers import resize

if TYPE_CHECKING:
    from engine.mmseg_plan import ImportPlan, State


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


@dataclass(frozen=True)
class OptimizerDefaults:
    """An architecture's training recipe with SGD, from its paper and mmsegmentation's configs."""

    sgd_lr: float
    weight_decay: float
    head_lr_mult: float = 1.0  # the heads' rate over the backbone's
    warmup: bool = False  # a linear warm-up (transformers)


@dataclass(frozen=True)
class Probe:
    """A module whose own computation `engine.explain` reads: `kind` is "token_attention" (a timm
    `Attention`; `prefix_tokens` before the patch tokens, patches of `patch_size`), "criss_cross" (a
    `CrissCrossAttention`) or "codewords" (an `Encoding`); `key` names the maps it gives."""

    kind: Literal["token_attention", "criss_cross", "codewords"]
    key: str
    module: nn.Module
    prefix_tokens: int = 0
    patch_size: int = 1


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

    arch: ClassVar[str] = ""  # the name `create_model` knows it by (`engine.registry`)
    default_backbone: ClassVar[str] = ""
    # The architecture's facts, for the code around the models (no one branches on names or head types):
    family: ClassVar[str] = ""  # "cnn", "setr", "segmenter": what shares a recipe and an encoder
    encoder_family: ClassVar[str] = ""  # "cnn" or "vit"
    small_backbones: ClassVar[tuple[str, ...]] = ()  # small real backbones (quick runs, the new-model dialog)
    test_config: ClassVar[dict] = {}  # a tiny configuration (timm's test_* backbones) that runs in seconds
    optimizer_defaults: ClassVar[OptimizerDefaults]
    # mmsegmentation checkpoints (`engine.import_mmseg`): the head(s) and backbones imported, for messages
    # (empty: none), and (mmseg key prefix, our key prefix) renaming rules; `{i}` stands for a block index
    mmseg_heads: ClassVar[str] = ""
    mmseg_backbones: ClassVar[str] = ""
    mmseg_key_rules: ClassVar[tuple[tuple[str, str], ...]] = ()
    config: dict

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.size_divisor = 1
        self.pad_rule: PadRule = "crop"
        self.normalization: tuple[tuple[float, ...], tuple[float, ...]] = ((0.0,) * 3, (1.0,) * 3)

    @classmethod
    def detect_mmseg(cls, state: State) -> bool:
        """Whether an mmsegmentation state dict's keys are this architecture's; `CheckpointMismatch` for a near
        miss that it can name (such as DeepLabV3 for DeepLabV3+)."""
        return False

    @classmethod
    def plan_mmseg(cls, state: State, hints: dict) -> ImportPlan:
        """What a checkpoint that `detect_mmseg` claimed becomes, from its shapes and the `hints` its config text
        gives (`engine.mmseg_import`); `CheckpointMismatch` saying why when it cannot become this model."""
        raise NotImplementedError(f"{cls.arch or cls.__name__} does not import mmsegmentation checkpoints")

    def heads(self, feats: list[torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        """Logits `"out"` (and with `train`, the auxiliary outputs) at the features' resolution."""
        raise NotImplementedError

    def cam_layer(self) -> nn.Module:
        """The module whose input is the decoder's last feature map (for class-activation maps)."""
        return self.decode_head.conv_seg

    def probes(self) -> list[Probe]:
        """The modules of the architecture's own attention (or assignments) that `engine.explain` maps."""
        return []

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
