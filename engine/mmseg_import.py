"""Published mmsegmentation checkpoints as SegAssist models: `import_mmseg`.

An mmsegmentation checkpoint holds an `EncoderDecoder`'s state dict (`backbone.*`, `neck.*`,
`decode_head.*`, `auxiliary_head.*`) and, in `meta`, the data set's classes and palette. Our heads carry
mmseg's module names, so head tensors keep their keys; the backbones are timm's, whose names differ
(ResNetV1c's deep stem, the ViT's blocks). Architecture, backbone and widths are read from the keys and
shapes. Every tensor must find a place and every parameter must be filled, or the import fails.

This module is the machinery every architecture shares: reading the file and its config text, asking each
registered architecture whether the keys are its own (`SegModel.detect_mmseg`) and for its plan
(`SegModel.plan_mmseg`, next to the architecture, in the words of `engine.mmseg_plan`), then filling the model.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from engine.checkpoint_pickle import CheckpointReadError, plain, read_checkpoint
from engine.classes import SegClass, default_color
from engine.mmseg_config import UNKNOWN, read_config_text
from engine.mmseg_plan import CheckpointMismatch, ImportPlan, describe_heads, is_int
from engine.mmseg_plan import KeyMap as KeyMap  # re-exported, with the ViT's renaming rules below
from engine.model_file import LoadedModel, ModelFileError
from engine.models.base import SegModel
from engine.models.transformer import MMSEG_VIT_RULES as _VIT_RULES  # noqa: F401
from engine.registry import architecture_class, create_model, list_architectures
from engine.weights import WeightsFileError, file_origin, read_state_dict

# Output stride -> the ResNet strides and dilations (contracted in the first block) that timm's `output_stride` builds.
_RESNET_STRIDES = {8: (1, 2, 1, 1), 16: (1, 2, 2, 1)}
_RESNET_DILATIONS = {8: (1, 1, 2, 4), 16: (1, 1, 1, 2)}


class MMSegImportError(ModelFileError):
    """An mmsegmentation checkpoint that cannot become one of our models; names the file and the reason."""


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
                                   f"{detected} ({describe_heads(state)})")
    hints = _config_hints(path, meta)
    if output_stride is not None:
        if hints.get("output_stride", output_stride) != output_stride:
            raise MMSegImportError(f"{path}: asked for output stride {output_stride}, but the checkpoint's config "
                                   f"sets {hints['output_stride']}")
        hints["output_stride"] = output_stride
    try:
        plan = architecture_class(detected).plan_mmseg(state, hints)
    except CheckpointMismatch as exc:
        raise MMSegImportError(f"{path}: {exc}") from exc
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
    if isinstance(crop, list | tuple) and len(crop) == 2 and all(is_int(v) for v in crop):
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
        out_indices = (out_indices,) if is_int(out_indices) else out_indices
        if isinstance(out_indices, list | tuple) and all(is_int(i) for i in out_indices):
            hints["out_indices"] = tuple(int(i) for i in out_indices)
        hints["with_cls_token"] = backbone.get("with_cls_token", True)
        hints["interpolate_mode"] = backbone.get("interpolate_mode", "bicubic")
        if is_int(backbone.get("num_heads")):
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


def _int_tuple(v: object, n: int) -> bool:
    return isinstance(v, list | tuple) and len(v) == n and all(is_int(i) for i in v)


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
    """Which registered architecture claims the checkpoint's keys (`SegModel.detect_mmseg`); `MMSegImportError`
    when none or several do."""
    try:
        claims = [name for name in list_architectures() if architecture_class(name).detect_mmseg(state)]
    except CheckpointMismatch as exc:
        raise MMSegImportError(f"{path}: {exc}; supported: {_supported()}") from exc
    if len(claims) > 1:
        raise MMSegImportError(f"{path}: the checkpoint's keys fit several architectures ({', '.join(claims)}): "
                               f"{describe_heads(state)}")
    if not claims:
        raise MMSegImportError(f"{path}: no supported architecture: the checkpoint has {describe_heads(state)}; "
                               f"supported: {_supported()}")
    return claims[0]


def _supported() -> str:
    """The architectures that import mmseg checkpoints, with their heads, grouped by backbone."""
    by_backbone: dict[str, list[str]] = {}
    for name in list_architectures():
        cls = architecture_class(name)
        if cls.mmseg_heads:
            by_backbone.setdefault(cls.mmseg_backbones, []).append(f"{name} ({cls.mmseg_heads})")
    return "; ".join(f"{', '.join(archs)} on {backbones}" for backbones, archs in by_backbone.items())


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
