"""timm models as the architectures' encoders: the list of those offered, building one with random, ImageNet or
file weights, and its normalisation. Knows no architecture (`engine.backbones` says which one offers what)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from torch import nn

from engine.weight_packages import WeightsPackage, bundled_weights, package_state_dict
from engine.weights import file_origin, read_state_dict

RANDOM = "random"  # how a model file records a randomly initialised backbone


@dataclass(frozen=True)
class Backbone:
    """A timm backbone offered for new models; every one (but the test models) has ImageNet weights: installed
    (`engine.weight_packages`) or in timm."""

    name: str  # timm model name
    family: str  # "cnn" (dilated feature extractor) or "vit" (VisionTransformer encoder)
    label: str  # what a person reads beside the name
    quick: bool = False  # small, fast on a CPU, with ImageNet weights installed: preselected for new models
    test: bool = False  # one of timm's tiny test models: for tests, not offered in the app


# The one list, read by the New-model dialog, the Training panel and the tests. Any other timm model of the
# family works too (typed by name); these are the ones built, tested and offered.
BACKBONES: tuple[Backbone, ...] = (
    Backbone("xception65", "cnn", "Xception-65, the DeepLabV3+ paper's"),
    Backbone("resnet101c", "cnn", "ResNet-101-C, the EncNet and CCNet papers' (mmsegmentation's)"),
    Backbone("resnet50c", "cnn", "ResNet-50-C (mmsegmentation's)"),
    Backbone("resnet101", "cnn", "ResNet-101"),
    Backbone("resnet50", "cnn", "ResNet-50"),
    Backbone("resnet18", "cnn", "ResNet-18, small"),
    Backbone("efficientnet_lite0", "cnn", "EfficientNet-Lite0, small and fast; ImageNet weights installed", quick=True),
    Backbone("efficientnet_lite1", "cnn", "EfficientNet-Lite1; ImageNet weights installed"),
    Backbone("efficientnet_lite2", "cnn", "EfficientNet-Lite2; ImageNet weights installed"),
    Backbone("mobilenetv3_large_100", "cnn", "MobileNetV3-Large, small and fast"),
    Backbone("test_resnet", "cnn", "timm's tiny test ResNet", test=True),
    Backbone("vit_large_patch16_384", "vit", "ViT-L/16, the SETR paper's"),
    Backbone("vit_base_patch16_384", "vit", "ViT-B/16, the Segmenter paper's"),
    Backbone("vit_small_patch16_384", "vit", "ViT-S/16"),
    Backbone("vit_tiny_patch16_384", "vit", "ViT-Ti/16, small and fast", quick=True),
    Backbone("vit_base_patch8_224", "vit", "ViT-B/8 (4x the tokens of /16)"),
    Backbone("test_vit", "vit", "timm's tiny test ViT", test=True),
)
CNN_BACKBONES = tuple(b.name for b in BACKBONES if b.family == "cnn")
VIT_BACKBONES = tuple(b.name for b in BACKBONES if b.family == "vit")

# The ImageNet normalisation on 0-255 RGB; the fallback when a backbone does not state its own.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def describe_origin(origin: str | None) -> str:
    """A person's words for a recorded `backbone_weights` value."""
    if not origin:
        return "not recorded"
    if origin == RANDOM:
        return "random initialisation"
    kind, _, rest = origin.partition(":")
    if kind == "timm":
        model, _, tag = rest.partition("@")
        return f"ImageNet (timm {model}.{tag})" if tag else f"ImageNet (timm {model})"
    if kind == "package":
        dist, _, version = rest.partition("==")
        return f"ImageNet (package {dist} {version})" if version else f"ImageNet (package {dist})"
    if kind == "file":
        name, _, digest = rest.partition("+sha256:")
        return f"file {name} (sha256 {digest[:12]}…)" if digest else f"file {name}"
    return origin


def create_timm_backbone(name: str, pretrained: bool | str | Path = False, **kwargs) -> nn.Module:
    """`timm.create_model(name, **kwargs)` with backbone weights: random (`False`), ImageNet weights (`True`:
    from an installed weights package when there is one for `name`, else timm's from the hub cache, downloaded
    first when missing) or a local weights file (a path).

    The module's `weights_origin` says which: `random`, `package:<distribution>==<version>`,
    `timm:<model>@<tag>` or `file:<name>+sha256:<hex>`. Raises `engine.pretrained.PretrainedUnavailable`
    when ImageNet weights are asked for and cannot be had.
    """
    if pretrained is True and (package := bundled_weights(name)) is not None:
        return _from_package(name, package, kwargs)
    if pretrained is True:
        from engine.pretrained import download_pretrained, pretrained_source

        path = download_pretrained(name)
        # timm's own loader on the cached file: it drops the classifier and adapts position embeddings.
        model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **kwargs)
        model.weights_origin = pretrained_source(name).origin
        return model
    model = timm.create_model(name, pretrained=False, **kwargs)
    model.weights_origin = RANDOM
    if isinstance(pretrained, str | Path):
        load_backbone_weights(model, pretrained)
        model.weights_origin = file_origin(pretrained)
    return model


def _from_package(name: str, package: WeightsPackage, kwargs: dict) -> nn.Module:
    """timm's `name` (features only, dilated, ... as `kwargs` say) filled from an installed weights package."""
    with torch.device("meta"):
        target = {k: v.shape for k, v in timm.create_model(name.split(".")[0], pretrained=False).state_dict().items()}
    state = package_state_dict(package, target)
    model = timm.create_model(name, pretrained=False, **kwargs)
    load_backbone_state(model, state, source=package.origin)
    model.weights_origin = package.origin
    return model


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

    `pretrained` is False, True (ImageNet weights) or a path to a local weights file (see
    `create_timm_backbone`).
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
    model = create_timm_backbone(name, pretrained, **kwargs)
    return model, spec


def load_backbone_weights(model: nn.Module, path: str | Path) -> None:
    """Fill `model` from a local timm weights file; extra tensors (a classifier) are ignored.

    Raises `ValueError` naming the file when a parameter of the model is missing or has another shape.
    """
    state = read_state_dict(path)
    load_backbone_state(model, {k.removeprefix("module."): v for k, v in state.items()}, source=str(path))


def load_backbone_state(model: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Fill `model` from `state` in timm's naming; extra tensors are ignored, a missing or misshapen one raises
    `ValueError` naming `source`."""
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
        raise ValueError(f"{source}: does not fit backbone {type(model).__name__}: {' and '.join(problems)}")
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
