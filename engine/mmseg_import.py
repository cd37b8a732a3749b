"""Published mmsegmentation checkpoints as SegAssist models: `import_mmseg`.

An mmsegmentation checkpoint holds an `EncoderDecoder`'s state dict (`backbone.*`, `neck.*`,
`decode_head.*`, `auxiliary_head.*`) and, in `meta`, the data set's classes and palette. Our heads carry
mmseg's module names, so head tensors keep their keys; the backbones are timm's, whose names differ
(ResNetV1c's deep stem, the ViT's blocks). Architecture, backbone and widths are read from the keys and
shapes. Every tensor must find a place and every parameter must be filled, or the import fails.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from engine.checkpoint_pickle import CheckpointReadError, plain, read_checkpoint
from engine.classes import SegClass, default_color
from engine.mmseg_config import UNKNOWN, read_config_text
from engine.model_file import LoadedModel, ModelFileError
from engine.models.base import SegModel
from engine.models.deeplabv3plus import ASPP_RATES
from engine.models.transformer import MMSEG_VIT_RULES as _VIT_RULES
from engine.registry import architecture_class, create_model
from engine.timm_backbones import IMAGENET_MEAN, IMAGENET_STD
from engine.weights import WeightsFileError, file_origin, read_state_dict

# mmseg's ResNetV1c/ResNet (V1b) block counts per stage -> depth.
_RESNET_DEPTHS = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}

# Output stride -> the ResNet strides and dilations (contracted in the first block) that timm's `output_stride` builds.
_RESNET_STRIDES = {8: (1, 2, 1, 1), 16: (1, 2, 2, 1)}
_RESNET_DILATIONS = {8: (1, 1, 2, 4), 16: (1, 1, 1, 2)}

# ResNetV1c's deep stem (conv-BN-ReLU x3) against timm's `conv1` Sequential and `bn1`.
_RESNET_V1C_STEM = (
    ("backbone.stem.0.", "backbone.conv1.0."),
    ("backbone.stem.1.", "backbone.conv1.1."),
    ("backbone.stem.3.", "backbone.conv1.3."),
    ("backbone.stem.4.", "backbone.conv1.4."),
    ("backbone.stem.6.", "backbone.conv1.6."),
    ("backbone.stem.7.", "backbone.bn1."),
)


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

# mmseg's SETR configs (ViT-L, 24 blocks): the backbone's `out_indices`; auxiliary head k reads output k.
_SETR_UP_OUT_INDICES = (9, 14, 19, 23)
_SETR_MLA_OUT_INDICES = (5, 11, 17, 23)

# mmseg 1.x's VisionTransformer builds its patch embedding without a bias by default (`patch_bias=False`).
_VIT_ZERO = ("backbone.patch_embed.proj.bias",)

# Segmenter's configs normalise with mean = std = 127.5.
_HALF_RANGE = ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5))


class MMSegImportError(ModelFileError):
    """An mmsegmentation checkpoint that cannot become one of our models; names the file and the reason."""


class KeyMap:
    """Renaming rules between mmseg's keys and ours: (mmseg prefix, our prefix) pairs where `{i}` stands
    for a block index. Keys that no rule matches are the same on both sides."""

    def __init__(self, rules: tuple[tuple[str, str], ...]):
        self.rules = rules
        self._forward = [(_prefix_pattern(m), o) for m, o in rules]
        self._backward = [(_prefix_pattern(o), m) for m, o in rules]

    def to_ours(self, key: str) -> str:
        return _rename(key, self._forward)

    def to_mmseg(self, key: str) -> str:
        return _rename(key, self._backward)


def _prefix_pattern(prefix: str) -> re.Pattern:
    return re.compile("^" + re.escape(prefix).replace(r"\{i\}", r"(?P<i>\d+)"))


def _rename(key: str, rules: list[tuple[re.Pattern, str]]) -> str:
    for pattern, template in rules:
        m = pattern.match(key)
        if m:
            return template.replace("{i}", m.groupdict().get("i") or "") + key[m.end():]
    return key


@dataclass
class ImportPlan:
    """What a checkpoint becomes: an architecture config and how its keys map onto the model's."""

    arch: str
    backbone: str
    num_classes: int
    options: dict
    keymap: KeyMap
    normalization: tuple[tuple[float, ...], tuple[float, ...]]
    # mmseg keys of modules that mmseg builds but never runs (e.g. an unused classifier): dropped.
    unused_by_mmseg: tuple[str, ...] = field(default=())
    # Our keys of biases that mmseg may build without (`patch_bias=False`): an absent one is an exact zero.
    zero_when_absent: tuple[str, ...] = field(default=())


def import_mmseg(path: str | Path, name: str | None = None, *, output_stride: int | None = None) -> LoadedModel:
    """Import a published mmsegmentation checkpoint (`.pth`, or its state dict as `.safetensors`).

    The architecture is detected from the keys (`name` overrides the detection but must agree with the
    keys); backbone and options come from the shapes, classes and palette from the checkpoint's `meta`
    (`class0`.. when absent), normalisation per mmseg's configs unless the config text kept in the
    checkpoint states its own. The config text (mmengine's `meta["cfg"]`, mmseg 0.x's `meta["config"]`) is
    read as Python literals, never run; what neither it nor the weights tell fails the import, except the
    output stride of a ResNet checkpoint without config text, which `output_stride` (8 or 16) may state.
    The model keeps mmseg's rule for inputs that are not a multiple of the patch size (`pad_rule="mmseg"`:
    padded bottom-right, logits resized straight to the input size), so it computes mmseg's logits at every
    size. Nothing is unpickled beyond tensors and plain data. The model comes back in eval mode with meta
    `{"imported_from", "source": "mmsegmentation", "normalization"}` (and `crop_size` when the config text
    states it). Raises `MMSegImportError` naming the file and the problem.
    """
    path = Path(path)
    state, meta = _read(path)
    detected = detect_architecture(path, state)
    if name is not None:
        try:
            architecture_class(name)
        except ValueError as exc:
            raise MMSegImportError(f"{path}: {exc}") from exc
        if name != detected:
            raise MMSegImportError(f"{path}: asked to import as {name}, but the checkpoint's keys are those of "
                                   f"{detected} ({_describe_heads(state)})")
    hints = _config_hints(path, meta)
    if output_stride is not None:
        if hints.get("output_stride", output_stride) != output_stride:
            raise MMSegImportError(f"{path}: asked for output stride {output_stride}, but the checkpoint's config "
                                   f"sets {hints['output_stride']}")
        hints["output_stride"] = output_stride
    plan = _PLANNERS[detected](path, state, hints)
    plan.options["pad_rule"] = "mmseg"
    try:
        model = _build(plan)
    except ValueError as exc:
        raise MMSegImportError(f"{path}: cannot build {plan.arch} for this checkpoint: {exc}") from exc
    model = fill_model(path, model, state, plan)
    model.backbone_weights = file_origin(path)  # the whole model, backbone included, comes from the checkpoint
    mean, std = hints.get("normalization", plan.normalization)
    model.normalization = (tuple(mean), tuple(std))
    classes = checkpoint_classes(meta, plan.num_classes)
    info = {
        "imported_from": path.name,
        "source": "mmsegmentation",
        "normalization": {"mean": list(mean), "std": list(std)},
    }
    if "crop_size" in hints:
        info["crop_size"] = hints["crop_size"]
    return LoadedModel(model.eval(), classes, info, path)


def _build(plan: ImportPlan) -> SegModel:
    """The planned model, preferably built on the meta device (no time spent initialising tensors that the
    checkpoint replaces); for real when its construction needs tensor values."""
    try:
        with torch.device("meta"):
            return create_model(plan.arch, plan.num_classes, backbone=plan.backbone, **plan.options)
    except (NotImplementedError, RuntimeError):
        return create_model(plan.arch, plan.num_classes, backbone=plan.backbone, **plan.options)


# ---------------------------------------------------------------------------------------------- reading


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    if path.suffix == ".safetensors":
        try:
            return _strip_module_prefix(read_state_dict(path)), {}
        except WeightsFileError as exc:
            raise MMSegImportError(str(exc)) from exc
    try:
        obj = read_checkpoint(path)
    except CheckpointReadError as exc:
        raise MMSegImportError(str(exc)) from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        state, meta = obj["state_dict"], obj.get("meta")
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state, meta = obj, None
    else:
        raise MMSegImportError(f"{path}: not an mmsegmentation checkpoint: expected a dict with a 'state_dict' "
                               f"entry, found {type(obj).__name__}")
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise MMSegImportError(f"{path}: the state dict holds non-tensor entries: {', '.join(not_tensors[:4])}")
    try:
        meta = plain(meta)
    except CheckpointReadError as exc:
        raise MMSegImportError(f"{path}: {exc}") from exc
    return _strip_module_prefix(dict(state)), meta if isinstance(meta, dict) else {}


def _strip_module_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if state and all(k.startswith("module.") for k in state):
        return {k.removeprefix("module."): v for k, v in state.items()}
    return state


def _config_hints(path: Path, meta: dict) -> dict:
    """What the training config text in `meta` (mmseg 0.x `config`, mmengine `cfg`) says beyond the weights.

    Keys: `config_text` (whether a readable text was found), `normalization`, `crop_size`, `output_stride`,
    `recurrence`, `out_indices`, `with_cls_token`, `interpolate_mode`, `up_scale`, `decoder_heads`,
    `encoder_heads`. Settings our models cannot reproduce raise `MMSegImportError`.
    """
    cfg = read_config_text(meta.get("cfg") or meta.get("config"))
    hints: dict = {"config_text": cfg.readable}
    if not cfg.readable:
        return hints
    backbone = cfg.get("model.backbone", {})
    head = cfg.get("model.decode_head", {})
    backbone = backbone if isinstance(backbone, dict) else {}
    head = head if isinstance(head, dict) else {}

    def fail(what: str) -> MMSegImportError:
        return MMSegImportError(f"{path}: the checkpoint's config sets {what}, which SegAssist's models do not "
                                f"reproduce")

    preprocessor = cfg.first("model.data_preprocessor", "data_preprocessor", default=None)
    norm_cfg = cfg.get("img_norm_cfg")
    source = preprocessor if isinstance(preprocessor, dict) and "mean" in preprocessor else norm_cfg
    if isinstance(source, dict) and "mean" in source:
        mean, std = _three_numbers(source.get("mean")), _three_numbers(source.get("std"))
        if mean is None or std is None or min(std) <= 0:
            raise MMSegImportError(f"{path}: the config's normalisation is not three means and three positive "
                                   f"standard deviations: mean={source.get('mean')!r}, std={source.get('std')!r}")
        hints["normalization"] = (mean, std)
        rgb = source.get("bgr_to_rgb", False) if source is preprocessor else source.get("to_rgb", True)
        if rgb is not True:
            raise fail("BGR input (bgr_to_rgb/to_rgb is not True)")
    crop = cfg.first("crop_size", "model.data_preprocessor.size", "data_preprocessor.size", default=None)
    if isinstance(crop, list | tuple) and len(crop) == 2 and all(_is_int(v) for v in crop):
        hints["crop_size"] = [int(crop[0]), int(crop[1])]

    kind = backbone.get("type")
    if isinstance(kind, str) and kind.startswith("ResNet"):
        strides = backbone.get("strides", (1, 2, 2, 2))  # mmseg's ResNet defaults
        dilations = backbone.get("dilations", (1, 1, 1, 1))
        if not _int_tuple(strides, 4) or not _int_tuple(dilations, 4):
            raise MMSegImportError(f"{path}: the config's backbone strides/dilations are not four integers each: "
                                   f"strides={strides!r}, dilations={dilations!r}")
        output_stride = 4 * math.prod(strides)
        if _RESNET_DILATIONS.get(output_stride) != tuple(dilations):
            raise fail(f"strides={tuple(strides)} and dilations={tuple(dilations)} (supported: "
                       + "; ".join(f"strides {_RESNET_STRIDES[o]}, dilations {d}" for o, d in _RESNET_DILATIONS.items())
                       + ")")
        hints["output_stride"] = output_stride
        if backbone.get("multi_grid") not in (None, UNKNOWN):
            raise fail(f"multi_grid={backbone['multi_grid']!r}")
        if backbone.get("contract_dilation", False) is not True and output_stride != 32:
            raise fail("contract_dilation=False")
    if isinstance(kind, str) and kind == "VisionTransformer":
        out_indices = backbone.get("out_indices", -1)
        out_indices = (out_indices,) if _is_int(out_indices) else out_indices
        if isinstance(out_indices, list | tuple) and all(_is_int(i) for i in out_indices):
            hints["out_indices"] = tuple(int(i) for i in out_indices)
        hints["with_cls_token"] = backbone.get("with_cls_token", True)
        hints["interpolate_mode"] = backbone.get("interpolate_mode", "bicubic")
        if _is_int(backbone.get("num_heads")):
            hints["encoder_heads"] = backbone["num_heads"]
        if backbone.get("patch_pad", "corner") != "corner" or backbone.get("pre_norm", False):
            raise fail("patch_pad other than 'corner' or pre_norm=True")
    if head.get("align_corners", False) is not False:
        raise fail("align_corners=True")
    if "recurrence" in head:
        hints["recurrence"] = head["recurrence"]
    if "up_scale" in head:
        hints["up_scale"] = head["up_scale"]
    if "num_heads" in head:
        hints["decoder_heads"] = head["num_heads"]
    if "dilations" in head:
        hints["aspp_dilations"] = head["dilations"]
    return hints


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_tuple(v: object, n: int) -> bool:
    return isinstance(v, list | tuple) and len(v) == n and all(_is_int(i) for i in v)


def _three_numbers(v: object) -> tuple[float, ...] | None:
    if isinstance(v, list | tuple) and len(v) == 3 and all(isinstance(i, int | float) and not isinstance(i, bool)
                                                          for i in v):
        return tuple(float(i) for i in v)
    return None


def checkpoint_classes(meta: dict, num_classes: int) -> list[SegClass]:
    """Classes from mmseg 0.x `meta` (`CLASSES`, `PALETTE`) or mmengine `meta["dataset_meta"]`; `class0`.. when
    the checkpoint names none or a number that differs from the model's outputs."""
    names, colors = meta.get("CLASSES"), meta.get("PALETTE")
    dataset_meta = meta.get("dataset_meta")
    if isinstance(dataset_meta, dict):
        names = dataset_meta.get("classes", names)
        colors = dataset_meta.get("palette", colors)
    if not isinstance(names, list | tuple) or len(names) != num_classes or not all(isinstance(n, str) for n in names):
        names = [f"class{i}" for i in range(num_classes)]
    if not isinstance(colors, list | tuple) or len(colors) != num_classes:
        colors = [None] * num_classes
    seen: set[str] = set()
    classes = []
    for i, (n, c) in enumerate(zip(names, colors, strict=True)):
        n = n.strip() or f"class{i}"
        if n in seen:
            n = f"{n} ({i})"
        seen.add(n)
        classes.append(SegClass(n, _color(c) or default_color(i)))
    return classes


def _color(c: object) -> tuple[int, int, int] | None:
    if isinstance(c, list | tuple) and len(c) == 3:
        try:
            rgb = tuple(int(v) for v in c)
        except (TypeError, ValueError):
            return None
        if all(0 <= v <= 255 for v in rgb):
            return rgb
    return None


# ---------------------------------------------------------------------------------------------- detection


def detect_architecture(path: Path, state: dict[str, torch.Tensor]) -> str:
    """Which of our architectures the checkpoint's keys describe; `MMSegImportError` when none does."""

    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in state)

    if has("decode_head.aspp_modules."):
        if has("decode_head.c1_bottleneck."):
            return "deeplabv3plus"
        raise MMSegImportError(f"{path}: a DeepLabV3 checkpoint (ASPP head without the DeepLabV3+ decoder); "
                               f"supported: {_SUPPORTED}")
    if has("decode_head.enc_module."):
        return "encnet"
    if has("decode_head.cca."):
        return "ccnet"
    if has("backbone.patch_embed."):
        if has("decode_head.cls_emb"):
            return "segmenter_mask"
        if has("neck.mla."):
            return "setr_mla"
        if has("decode_head.up_convs.") and has("decode_head.norm."):
            kernel = state.get("decode_head.up_convs.0.0.conv.weight", torch.empty(0, 0, 3, 3)).shape[-1]
            return "setr_naive" if kernel == 1 else "setr_pup"
        if {k for k in state if k.startswith("decode_head.")} == {"decode_head.conv_seg.weight",
                                                                 "decode_head.conv_seg.bias"}:
            return "segmenter_linear"
    raise MMSegImportError(f"{path}: no supported architecture: the checkpoint has {_describe_heads(state)}; "
                           f"supported: {_SUPPORTED}")


_SUPPORTED = (
    "DeepLabV3+ (DepthwiseSeparableASPPHead), EncNet (EncHead), CCNet (CCHead) on ResNetV1c/ResNet-50/101/152; "
    "SETR (SETRUPHead naive and PUP, MLANeck + SETRMLAHead), Segmenter (FCNHead without convs, "
    "SegmenterMaskTransformerHead) on VisionTransformer"
)


def _describe_heads(state: dict[str, torch.Tensor]) -> str:
    parts = []
    for top in ("backbone", "neck", "decode_head", "auxiliary_head"):
        subs = sorted({k.split(".")[1] for k in state if k.startswith(top + ".") and k.count(".") > 1})
        if subs:
            parts.append(f"{top}: {', '.join(subs[:8])}{', ...' if len(subs) > 8 else ''}")
    return "; ".join(parts) or "no backbone or head keys"


# ---------------------------------------------------------------------------------------------- planning


def _shape(path: Path, state: dict[str, torch.Tensor], key: str) -> torch.Size:
    if key not in state:
        raise MMSegImportError(f"{path}: the checkpoint lacks {key}")
    return state[key].shape


def _count(state: dict[str, torch.Tensor], prefix: str) -> int:
    """How many numbered children `prefix{n}.` the keys have."""
    found = {int(m.group(1)) for k in state if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    return max(found) + 1 if found else 0


def _resnet(path: Path, state: dict[str, torch.Tensor]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The timm name of the checkpoint's ResNet backbone and the renaming rules for it."""
    if "backbone.stem.0.weight" in state:
        variant, rules = "c", _RESNET_V1C_STEM  # ResNetV1c: deep stem
        if _shape(path, state, "backbone.stem.0.weight")[0] != 32:
            raise MMSegImportError(f"{path}: the ResNetV1c stem is {state['backbone.stem.0.weight'].shape[0]} "
                                   f"wide; timm's resnet*c stems are 32 wide")
    elif "backbone.conv1.weight" in state:
        variant, rules = "", ()  # ResNet (V1b): the same names as timm's
    else:
        raise MMSegImportError(f"{path}: the backbone is not a ResNet ({_describe_heads(state)})")
    if any(k.startswith("backbone.layer2.0.downsample.2.") for k in state):
        raise MMSegImportError(f"{path}: a ResNetV1d backbone (average-pool downsampling); its dilated stages "
                               f"differ from timm's resnet*d, so it is not supported")
    if "backbone.layer1.0.conv3.weight" not in state:
        raise MMSegImportError(f"{path}: a ResNet-18/34 backbone (basic blocks); mmseg dilates basic blocks "
                               f"differently from timm, so only ResNet-50/101/152 are supported")
    blocks = tuple(_count(state, f"backbone.layer{i}.") for i in range(1, 5))
    depth = _RESNET_DEPTHS.get(blocks)
    if depth is None:
        raise MMSegImportError(f"{path}: a ResNet with {blocks} blocks per stage; supported: "
                               f"{', '.join(f'{v} {k}' for k, v in _RESNET_DEPTHS.items())}")
    return f"resnet{depth}{variant}", rules


def _cnn_common(path: Path, state: dict[str, torch.Tensor], hints: dict) -> tuple[str, tuple, int, dict]:
    output_stride = hints.get("output_stride")
    if output_stride is None:  # the weights are the same at every output stride
        raise MMSegImportError(f"{path}: the output stride (8 or 16) is not in the checkpoint: it keeps no config text "
                               f"naming the backbone's strides and dilations, and the weights do not show it; pass "
                               f"output_stride=8 or 16")
    if output_stride not in (8, 16):
        raise MMSegImportError(f"{path}: output stride {output_stride}; supported: 8 and 16")
    backbone, rules = _resnet(path, state)
    num_classes = _shape(path, state, "decode_head.conv_seg.weight")[0]
    options: dict = {"output_stride": output_stride}
    aux = any(k.startswith("auxiliary_head.") for k in state)
    options["aux"] = aux
    if aux:
        options["aux_channels"] = _shape(path, state, "auxiliary_head.convs.0.conv.weight")[0]
    return backbone, rules, num_classes, options


def _plan_deeplabv3plus(path: Path, state: dict[str, torch.Tensor], hints: dict) -> ImportPlan:
    backbone, rules, num_classes, options = _cnn_common(path, state, hints)
    rates = (1, *ASPP_RATES[options["output_stride"]])
    if "aspp_dilations" in hints and tuple(hints["aspp_dilations"]) != rates:
        raise MMSegImportError(f"{path}: the config sets ASPP dilations {hints['aspp_dilations']!r}; at output stride "
                               f"{options['output_stride']} SegAssist's DeepLabV3+ uses {rates}")
    options.update(
        channels=_shape(path, state, "decode_head.image_pool.1.conv.weight")[0],
        c1_channels=_shape(path, state, "decode_head.c1_bottleneck.conv.weight")[0],
        separable=any(k.startswith("decode_head.aspp_modules.1.depthwise_conv.") for k in state),
        aspp_bottleneck_kernel=_shape(path, state, "decode_head.bottleneck.conv.weight")[-1],
    )
    return ImportPlan("deeplabv3plus", backbone, num_classes, options, KeyMap(rules), (IMAGENET_MEAN, IMAGENET_STD))


def _plan_encnet(path: Path, state: dict[str, torch.Tensor], hints: dict) -> ImportPlan:
    backbone, rules, num_classes, options = _cnn_common(path, state, hints)
    options.update(
        channels=_shape(path, state, "decode_head.bottleneck.conv.weight")[0],
        num_codes=_shape(path, state, "decode_head.enc_module.encoding.0.codewords")[0],
    )
    return ImportPlan("encnet", backbone, num_classes, options, KeyMap(rules), (IMAGENET_MEAN, IMAGENET_STD))


def _plan_ccnet(path: Path, state: dict[str, torch.Tensor], hints: dict) -> ImportPlan:
    backbone, rules, num_classes, options = _cnn_common(path, state, hints)
    options.update(channels=_shape(path, state, "decode_head.convs.0.conv.weight")[0],
                   recurrence=hints.get("recurrence", 2))  # CCHead's default
    if not _is_int(options["recurrence"]) or options["recurrence"] < 1:
        raise MMSegImportError(f"{path}: the config sets recurrence={options['recurrence']!r}")
    rules = (*rules, *architecture_class("ccnet").mmseg_key_rules)
    return ImportPlan("ccnet", backbone, num_classes, options, KeyMap(rules), (IMAGENET_MEAN, IMAGENET_STD))


def _vit(path: Path, state: dict[str, torch.Tensor], hints: dict, *, with_cls_token: bool,
         interpolate_mode: str) -> tuple[str, int, int]:
    """The timm name of the checkpoint's ViT, the image size its position embeddings were trained for
    (a square grid of patches), and its depth. mmseg's ViT before its refactoring (mmseg < 0.14) used
    timm's names, which need no renaming."""
    if hints.get("with_cls_token", with_cls_token) != with_cls_token:
        raise MMSegImportError(f"{path}: the config sets with_cls_token={hints['with_cls_token']}; the architecture "
                               f"is only defined {'with' if with_cls_token else 'without'} the class token")
    if hints.get("interpolate_mode", interpolate_mode) != interpolate_mode:
        raise MMSegImportError(f"{path}: the config resizes position embeddings with interpolate_mode="
                               f"{hints['interpolate_mode']!r}; SegAssist's model of this architecture uses "
                               f"{interpolate_mode!r}")
    timm_named = "backbone.patch_embed.proj.weight" in state
    width, _, patch, _ = _shape(path, state, f"backbone.patch_embed.{'proj' if timm_named else 'projection'}.weight")
    depth = _count(state, "backbone.blocks." if timm_named else "backbone.layers.")
    name = _VIT_NAMES.get((width, depth, patch))
    if name is None:
        known = ", ".join(f"{n} ({w} wide, {d} blocks, patch {p})" for (w, d, p), n in _VIT_NAMES.items())
        raise MMSegImportError(f"{path}: a ViT {width} wide with {depth} blocks and patch size {patch}, which no "
                               f"timm model we map to has; supported: {known}")
    heads = _VIT_HEADS.get(name)
    if "encoder_heads" in hints and heads is not None and hints["encoder_heads"] != heads:
        raise MMSegImportError(f"{path}: the config's ViT has {hints['encoder_heads']} attention heads; timm's {name} "
                               f"of the same width and depth has {heads}")
    tokens = _shape(path, state, "backbone.pos_embed")[1] - 1  # mmseg always keeps a class-token slot
    grid = math.isqrt(tokens)
    if grid * grid != tokens:
        raise MMSegImportError(f"{path}: position embeddings for {tokens} patches, not a square grid")
    return name, grid * patch, depth


def _layers(path: Path, hints: dict, default: tuple[int, ...], depth: int) -> tuple[int, ...]:
    """The backbone's `out_indices` from the config text, else those of mmseg's configs for ViT-L's 24 blocks;
    `MMSegImportError` when neither applies (the weights do not say which blocks the heads read)."""
    given = hints.get("out_indices")
    if given is not None:
        given = tuple(i + depth if i < 0 else i for i in given)
        if not given or not all(0 <= i < depth for i in given):
            raise MMSegImportError(f"{path}: the config's out_indices {hints['out_indices']} do not fit a ViT of "
                                   f"{depth} blocks")
        return given
    if depth == 24:
        return default
    raise MMSegImportError(f"{path}: which of the ViT's {depth} blocks the heads read is not in the checkpoint: no "
                           f"config text names the backbone's out_indices, and mmseg's configs only fix them for "
                           f"24 blocks")


def _plan_setr_naive(path: Path, state: dict[str, torch.Tensor], hints: dict) -> ImportPlan:
    backbone, img_size, depth = _vit(path, state, hints, with_cls_token=True, interpolate_mode="bilinear")
    aux = _count(state, "auxiliary_head.")
    up_scale = hints.get("up_scale", 4)  # SETRUPHead's default (not in the weights)
    if not _is_int(up_scale) or up_scale < 1:
        raise MMSegImportError(f"{path}: the config sets up_scale={up_scale!r}")
    options = dict(
        channels=_shape(path, state, "decode_head.up_convs.0.0.conv.weight")[0],
        num_convs=_count(state, "decode_head.up_convs."),
        up_scale=up_scale,
        aux=aux > 0,
        img_size=img_size,
    )
    if aux:
        options["aux_indices"] = _layers(path, hints, _SETR_UP_OUT_INDICES, depth)[:aux]
        options["aux_num_convs"] = _count(state, "auxiliary_head.0.up_convs.")  # 2 in mmseg's ADE20K config
    num_classes = _shape(path, state, "decode_head.conv_seg.weight")[0]
    return ImportPlan("setr_naive", backbone, num_classes, options, KeyMap(_VIT_RULES), (IMAGENET_MEAN, IMAGENET_STD),
                      zero_when_absent=_VIT_ZERO)


def _plan_setr_pup(path: Path, state: dict[str, torch.Tensor], hints: dict) -> ImportPlan:
    backbone, img_size, depth = _vit(path, state, hints, with_cls_token=True, interpolate_mode="bilinear")
    if hints.get("up_scale", 2) != 2:
        raise MMSegImportError(f"{path}: the config sets up_scale={hints['up_scale']!r}; SETR-PUP upsamples x2")
    aux = _count(state, "auxiliary_head.")
    options = dict(channels=_shape(path, state, "decode_head.up_convs.0.0.conv.weight")[0], aux=aux > 0,
                   img_size=img_size)
    if aux:
        options["aux_indices"] = _layers(path, hints, _SETR_UP_OUT_INDICES, depth)[:aux]
        options["aux_num_convs"] = _count(state, "auxiliary_head.0.up_convs.")
    num_classes = _shape(path, state, "decode_head.conv_seg.weight")[0]
    return ImportPlan("setr_pup", backbone, num_classes, options, KeyMap(_VIT_RULES), (IMAGENET_MEAN, IMAGENET_STD),
                      zero_when_absent=_VIT_ZERO)


def _plan_setr_mla(path: Path, state: dict[str, torch.Tensor], hints: dict) -> ImportPlan:
    backbone, img_size, depth = _vit(path, state, hints, with_cls_token=False, interpolate_mode="bilinear")
    # mmseg 0.15 kept the per-level convs as `mlahead.{i}` (an MLAModule list); later versions as `up_convs.{i}`.
    streams = "decode_head.mlahead." if "decode_head.mlahead.0.0.conv.weight" in state else "decode_head.up_convs."
    options = dict(
        mla_indices=_layers(path, hints, _SETR_MLA_OUT_INDICES, depth),
        mla_channels=_shape(path, state, "neck.mla.channel_proj.0.conv.weight")[0],
        mlahead_channels=_shape(path, state, f"{streams}0.0.conv.weight")[0],
        aux=_count(state, "auxiliary_head.") > 0,
        img_size=img_size,
    )
    num_classes = _shape(path, state, "decode_head.conv_seg.weight")[0]
    rules = _VIT_RULES
    if streams == "decode_head.mlahead.":
        rules = (*rules, ("decode_head.mlahead.{i}.", "decode_head.up_convs.{i}."))
    # mmseg's SETR-MLA drops the class token before the blocks (`with_cls_token=False`) but keeps it.
    return ImportPlan("setr_mla", backbone, num_classes, options, KeyMap(rules), (IMAGENET_MEAN, IMAGENET_STD),
                      unused_by_mmseg=("backbone.cls_token",), zero_when_absent=_VIT_ZERO)


def _plan_segmenter_linear(path: Path, state: dict[str, torch.Tensor], hints: dict) -> ImportPlan:
    backbone, img_size, _ = _vit(path, state, hints, with_cls_token=True, interpolate_mode="bicubic")
    num_classes = _shape(path, state, "decode_head.conv_seg.weight")[0]
    return ImportPlan("segmenter_linear", backbone, num_classes, {"img_size": img_size}, KeyMap(_VIT_RULES),
                      _HALF_RANGE, zero_when_absent=_VIT_ZERO)


def _plan_segmenter_mask(path: Path, state: dict[str, torch.Tensor], hints: dict) -> ImportPlan:
    backbone, img_size, _ = _vit(path, state, hints, with_cls_token=True, interpolate_mode="bicubic")
    options = dict(
        num_layers=_count(state, "decode_head.layers."),
        embed_dims=_shape(path, state, "decode_head.dec_proj.weight")[0],
        img_size=img_size,
    )
    if "decoder_heads" in hints:  # not in the weights; mmseg's configs give the decoder the encoder's heads
        options["num_heads"] = hints["decoder_heads"]
    num_classes = _shape(path, state, "decode_head.cls_emb")[1]
    rules = architecture_class("segmenter_mask").mmseg_key_rules
    # mmseg's decode heads all build a 1x1 `conv_seg`; the mask transformer never uses it.
    return ImportPlan("segmenter_mask", backbone, num_classes, options, KeyMap(rules), _HALF_RANGE,
                      unused_by_mmseg=("decode_head.conv_seg.weight", "decode_head.conv_seg.bias"),
                      zero_when_absent=_VIT_ZERO)


_PLANNERS = {
    "deeplabv3plus": _plan_deeplabv3plus,
    "encnet": _plan_encnet,
    "ccnet": _plan_ccnet,
    "setr_naive": _plan_setr_naive,
    "setr_pup": _plan_setr_pup,
    "setr_mla": _plan_setr_mla,
    "segmenter_linear": _plan_segmenter_linear,
    "segmenter_mask": _plan_segmenter_mask,
}


# ---------------------------------------------------------------------------------------------- filling


def fill_model(path: Path, model: SegModel, state: dict[str, torch.Tensor], plan: ImportPlan) -> SegModel:
    """`model` (built on the meta device) holding the checkpoint's tensors, mapped through `plan.keymap`.

    Fails naming the keys when a tensor finds no place, a parameter or buffer stays unfilled, two tensors
    land on one place, or shapes differ. BatchNorm's `num_batches_tracked` counters may be absent.
    """
    own = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    source: dict[str, str] = {}
    leftover, clashes, wrong = [], [], []
    for key, tensor in state.items():
        if key in plan.unused_by_mmseg:
            continue
        ours = plan.keymap.to_ours(key)
        if ours not in own:
            leftover.append(key)
        elif ours in source:
            clashes.append(f"{source[ours]} and {key}")
        else:
            source[ours], target = key, own[ours]
            if tensor.shape != target.shape:
                if tensor.numel() == target.numel() == 1:  # e.g. a 0-dim scale saved as [1]
                    tensor = tensor.reshape(target.shape)
                else:
                    wrong.append(f"{key} {tuple(tensor.shape)} (ours {tuple(target.shape)})")
                    continue
            mapped[ours] = tensor.to(target.dtype)
    for k in plan.zero_when_absent:
        if k in own and k not in source:
            source[k], mapped[k] = "(absent: zero)", torch.zeros(own[k].shape, dtype=own[k].dtype)
    missing = [k for k in own if k not in source and not k.endswith("num_batches_tracked")]
    problems = []
    if leftover:
        problems.append(f"{len(leftover)} checkpoint tensors have no place in the model: {_first(leftover)}")
    if missing:
        names = [f"{plan.keymap.to_mmseg(k)} (for {k})" if plan.keymap.to_mmseg(k) != k else k for k in missing]
        problems.append(f"{len(missing)} model tensors are missing from the checkpoint: {_first(names)}")
    if wrong:
        problems.append(f"{len(wrong)} tensors have another shape than the model's: {_first(wrong)}")
    if clashes:
        problems.append(f"tensors map onto the same place: {_first(clashes)}")
    if problems:
        raise MMSegImportError(f"{path}: the checkpoint does not fit {plan.arch} with backbone {plan.backbone} "
                               f"and options {plan.options}: " + "; ".join(problems))
    for k, v in own.items():
        if k not in mapped:  # a BatchNorm counter the checkpoint did not keep
            mapped[k] = torch.zeros(v.shape, dtype=v.dtype)
    model.load_state_dict(mapped, assign=True)
    left_on_meta = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left_on_meta:  # buffers outside the state dict: build the model for real
        model = create_model(plan.arch, plan.num_classes, backbone=plan.backbone, **plan.options)
        model.load_state_dict(mapped)
    return model


def _first(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (", ..." if len(items) > n else "")
