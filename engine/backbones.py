"""timm CNNs as dilated feature extractors for the CNN architectures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from torch import nn

from engine.weights import read_state_dict

# Backbones we build and test; any other timm CNN that supports features_only and output_stride works too.
CNN_BACKBONES = ("resnet50c", "resnet101c", "xception65", "resnet18", "mobilenetv3_large_100")

# The ImageNet normalisation on 0-255 RGB; the fallback when a backbone does not state its own.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class FeatureSpec:
    """Which of the backbone's outputs the heads use, and their channel counts."""

    channels: tuple[int, ...]  # of every returned feature
    low: int  # index of the stride-4 feature (DeepLabV3+'s decoder)
    aux: int  # index of the penultimate stage (auxiliary FCN head)
    last: int  # index of the last stage (the decode head's input)


def create_cnn_backbone(
    name: str, output_stride: int, pretrained: bool | str | Path = False
) -> tuple[nn.Module, FeatureSpec]:
    """A timm `features_only` model dilated to `output_stride` (8 or 16), and where its features are.

    `pretrained` is False, True (timm's download) or a path to a local weights file.
    """
    if output_stride not in (8, 16):
        raise ValueError(f"output_stride must be 8 or 16, got {output_stride!r}")
    _check_timm_name(name, kind="CNN", examples=CNN_BACKBONES)
    kwargs = dict(features_only=True, output_stride=output_stride)
    try:
        with torch.device("meta"):
            probe = timm.create_model(name, pretrained=False, **kwargs)
    except Exception as exc:  # timm raises several types for models without feature support
        raise ValueError(
            f"backbone {name!r} cannot serve as a dilated feature extractor ({exc}); "
            f"accepted: timm CNNs with features_only and output_stride, e.g. {', '.join(CNN_BACKBONES)}"
        ) from exc
    reductions = probe.feature_info.reduction()
    channels = tuple(probe.feature_info.channels())
    del probe
    low = max(i for i, r in enumerate(reductions) if r <= 4)
    spec = FeatureSpec(channels=channels, low=low, aux=len(channels) - 2, last=len(channels) - 1)
    model = timm.create_model(name, pretrained=pretrained is True, **kwargs)
    if isinstance(pretrained, str | Path):
        load_backbone_weights(model, pretrained)
    return model, spec


def load_backbone_weights(model: nn.Module, path: str | Path) -> None:
    """Fill `model` from a local timm weights file; extra tensors (a classifier) are ignored.

    Raises `ValueError` naming the file when a parameter of the model is missing or has another shape.
    """
    state = read_state_dict(path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in own.items()
             if k in state and state[k].shape != v.shape]
    if missing or wrong:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing tensors (first: {', '.join(missing[:3])})")
        if wrong:
            problems.append(f"{len(wrong)} tensors of the wrong shape (first: {'; '.join(wrong[:3])})")
        raise ValueError(f"{path}: does not fit backbone {type(model).__name__}: {' and '.join(problems)}")
    model.load_state_dict({k: state[k] for k in own if k in state}, strict=False)


def backbone_normalization(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std on 0-255 RGB that the backbone's pretraining used (ImageNet's if it says nothing)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean, std = cfg.get("mean"), cfg.get("std")
    if mean is None or std is None or len(mean) != 3:
        return IMAGENET_MEAN, IMAGENET_STD
    return tuple(round(m * 255, 4) for m in mean), tuple(round(s * 255, 4) for s in std)


def _check_timm_name(name: str, kind: str, examples: tuple[str, ...]) -> None:
    if not isinstance(name, str) or not timm.is_model(name):
        raise ValueError(f"unknown {kind} backbone {name!r}; accepted: timm model names, e.g. {', '.join(examples)}")
