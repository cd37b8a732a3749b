"""The architecture registry: a dict of model classes, filled with the built-in ones (`engine.models`) on first
use and by the `register_architecture` decorator for others. The models never import it: the dependency
points one way, from here to them."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from engine.models.base import SegModel

_ARCHITECTURES: dict[str, type[SegModel]] = {}

M = TypeVar("M", bound="type[SegModel]")

# Keywords that create_model handles itself and that never reach the constructors.
_RESERVED = ("self", "num_classes", "backbone", "pretrained", "pad_rule")
MAX_CLASSES = 65_536

# Sane ranges of the architectures' options: a value outside is refused before anything is built (a
# model file or checkpoint config saying recurrence=100000000 would otherwise never finish a forward).
_INT_RANGES = {
    "output_stride": (4, 32), "channels": (1, 4096), "c1_channels": (1, 4096), "aux_channels": (1, 4096),
    "recurrence": (1, 8), "num_codes": (1, 1024), "num_layers": (1, 48), "num_convs": (1, 16),
    "aux_num_convs": (1, 16), "up_scale": (1, 32), "mla_channels": (1, 4096), "mlahead_channels": (1, 4096),
    "embed_dims": (1, 8192), "num_heads": (1, 128), "aspp_bottleneck_kernel": (1, 7), "img_size": (16, 8192),
}
_FLOAT_RANGES = {"dropout": (0.0, 1.0), "drop_path_rate": (0.0, 1.0)}
_INDEX_LISTS = {"mla_indices", "aux_indices"}


def check_options(name: str, options: dict) -> None:
    """`ValueError` naming the option when a value has the wrong type or lies outside its sane range."""
    for key, value in options.items():
        if value is None:
            continue
        if key in _INT_RANGES:
            lo, hi = _INT_RANGES[key]
            values = value if key == "img_size" and isinstance(value, list | tuple) and len(value) == 2 else [value]
            for v in values:
                if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                    raise ValueError(f"{name}: {key}={value!r} is out of range (an integer {lo}..{hi})")
        elif key in _FLOAT_RANGES:
            lo, hi = _FLOAT_RANGES[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
                raise ValueError(f"{name}: {key}={value!r} is out of range (a number {lo}..{hi})")
        elif key in _INDEX_LISTS:
            if (not isinstance(value, list | tuple) or len(value) > 64
                    or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 64 for v in value)):
                raise ValueError(f"{name}: {key}={value!r} must be a list of at most 64 layer indices 0..63")
        elif isinstance(architecture_options(name).get(key), bool) and not isinstance(value, bool):
            raise ValueError(f"{name}: {key}={value!r} must be true or false")


def register_architecture(name: str):
    """Class decorator: make the model class available to `create_model` under `name`."""

    def decorate(cls: M) -> M:
        if name in _ARCHITECTURES:
            raise ValueError(f"architecture {name!r} is registered twice")
        cls.arch = name
        _ARCHITECTURES[name] = cls
        return cls

    return decorate


def list_architectures() -> list[str]:
    """Names accepted by `create_model`, sorted."""
    _load_builtin()
    return sorted(_ARCHITECTURES)


def architecture_class(name: str) -> type[SegModel]:
    """The model class registered under `name`; `ValueError` listing the known names otherwise."""
    _load_builtin()
    if name not in _ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known architectures: {', '.join(sorted(_ARCHITECTURES))}")
    return _ARCHITECTURES[name]


def architecture_options(name: str) -> dict[str, object]:
    """The keyword options an architecture accepts beside num_classes/backbone/pretrained, with defaults."""
    params = inspect.signature(architecture_class(name).__init__).parameters
    return {k: p.default for k, p in params.items() if k not in _RESERVED and p.kind is p.KEYWORD_ONLY}


def create_model(
    name: str, num_classes: int, *, backbone: str | None = None, pretrained: bool | str = False, **overrides
) -> SegModel:
    """Build architecture `name` with `num_classes` outputs.

    `backbone` is a timm model name (the architecture's paper default when None); `pretrained` is False,
    True (timm's download: only when the person asks and is online) or a path to a local weights file.
    `overrides` are the architecture's own options (see `architecture_options`), and `pad_rule`, how logits
    of an input padded to the patch size come back to the input size ("crop", the default, or "mmseg" for
    models imported from mmsegmentation; see `engine.models.base.PAD_RULES`; kept in `config` when not the
    default). The model's `config` holds everything needed to rebuild it: `create_model(**model.config)`.
    """
    from engine.models.base import PAD_RULES

    cls = architecture_class(name)
    pad_rule = overrides.pop("pad_rule", "crop")
    if pad_rule not in PAD_RULES:
        raise ValueError(f"pad_rule must be one of {', '.join(map(repr, PAD_RULES))}, got {pad_rule!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes must be an integer >= 1 (at most {MAX_CLASSES}), got {num_classes!r}")
    options = architecture_options(name)
    unknown = sorted(set(overrides) - set(options))
    if unknown:
        accepted = ", ".join(f"{k}={v!r}" for k, v in options.items()) or "none"
        raise ValueError(f"{name} does not accept option(s) {', '.join(unknown)}; accepted options: {accepted}")
    check_options(name, overrides)
    if backbone is not None and not isinstance(backbone, str):
        raise ValueError(f"{name}: backbone must be a timm model name, got {backbone!r:.80}")
    backbone = backbone if backbone is not None else cls.default_backbone
    model = cls(num_classes, backbone, pretrained=pretrained, **overrides)
    model.pad_rule = pad_rule
    if pad_rule != "crop":
        overrides["pad_rule"] = pad_rule
    # Where the backbone's initial weights came from (random, timm:..., file:...): kept in the model file.
    model.backbone_weights = getattr(getattr(model, "backbone", None), "weights_origin", "random")
    # JSON-shaped (tuples as lists) so that a config read back from a model file compares equal.
    model.config = _plain({"name": name, "num_classes": num_classes, "backbone": backbone, **options, **overrides})
    return model


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _load_builtin() -> None:
    from engine.models import ARCHITECTURES

    for cls in ARCHITECTURES:
        if _ARCHITECTURES.setdefault(cls.arch, cls) is not cls:
            raise ValueError(f"architecture {cls.arch!r} is registered twice")
