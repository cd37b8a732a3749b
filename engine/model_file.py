"""Model files: one `.safetensors` file, the weights plus a JSON document in the header's metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from engine.atomic import atomic_path
from engine.classes import SegClass, as_classes
from engine.models.base import SegModel
from engine.registry import architecture_class, create_model
from engine.weights import WeightsFileError, read_state_dict

METADATA_KEY = "segassist"
FORMAT_VERSION = 1
_TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".pkl")


class ModelFileError(ValueError):
    """A model file that cannot be used; the message names the file and the problem."""


@dataclass
class LoadedModel:
    """A model read from a file (in eval mode), its classes and the rest of its metadata."""

    model: SegModel
    classes: list[SegClass]
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def normalization(self) -> tuple[list[float], list[float]]:
        norm = self.meta.get("normalization") or {}
        mean, std = self.model.normalization
        return list(norm.get("mean", mean)), list(norm.get("std", std))


def save_model(path: str | Path, model: SegModel, *, classes, **meta) -> Path:
    """Write `model` and its metadata to one `.safetensors` file, atomically.

    `classes` are names or `SegClass`es, one per output channel. `meta` is JSON data kept in the file:
    by convention `normalization` ({"mean", "std"} on 0-255 RGB; the model's own by default),
    `crop_size`, `history` (a list of training records), `parent` (the model it was fine-tuned from).
    `backbone_weights` (where the backbone's initial weights came from: `random`, `timm:<model>@<tag>` or
    `file:<name>+sha256:<hex>`) is the model's own `backbone_weights` unless given.
    """
    path = Path(path)
    try:
        header = {METADATA_KEY: json.dumps(model_document(model, classes=classes, **meta))}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return path


def model_document(model: SegModel, *, classes, **meta) -> dict:
    """The JSON document that a model file (and an exported ONNX file) carries for `model`."""
    classes = as_classes(classes)
    if len(classes) != model.num_classes:
        raise ValueError(f"{len(classes)} class names for a model with {model.num_classes} outputs")
    mean, std = model.normalization
    doc = {
        "format": "segassist-model",
        "version": FORMAT_VERSION,
        "config": model.config,
        "classes": [c.to_json() for c in classes],
        "normalization": {"mean": list(mean), "std": list(std)},
        "history": [],
        **({"backbone_weights": model.backbone_weights} if getattr(model, "backbone_weights", None) else {}),
        **meta,
    }
    try:
        json.dumps(doc)
    except TypeError as exc:
        raise ValueError(f"metadata must be JSON data ({exc})") from exc
    return doc


def read_model_metadata(path: str | Path) -> dict:
    """The JSON document of a model file, without reading its weights."""
    path = Path(path)
    _check_kind(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            keys = list(f.keys())  # noqa: SIM118 (safe_open is not a dict)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a readable model file: truncated or corrupt ({_first_line(exc)})") from exc
    if METADATA_KEY not in header:
        raise ModelFileError(f"{path}: a safetensors file without SegAssist metadata; {_guess_weights(keys)}")
    try:
        doc = json.loads(header[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: the SegAssist metadata is not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict) or "classes" not in doc:
        raise ModelFileError(f"{path}: the SegAssist metadata lacks the architecture config or the classes")
    version = doc.get("version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written in model file format version {version!r}; this SegAssist reads up to {FORMAT_VERSION}"
        )
    return doc


def document_normalization(path: Path, doc: dict) -> tuple[list[float], list[float]] | None:
    """(mean, std) from a model document, None when it has none; `ModelFileError` when malformed."""
    norm = doc.get("normalization")
    if norm is None:
        return None
    try:
        mean, std = [float(v) for v in norm["mean"]], [float(v) for v in norm["std"]]
    except (TypeError, KeyError, ValueError) as exc:
        raise ModelFileError(f"{path}: the normalization must be {{'mean': [3 numbers], 'std': [3 numbers]}}") from exc
    if len(mean) != 3 or len(std) != 3 or not all(v > 0 for v in std):
        raise ModelFileError(f"{path}: the normalization needs three means and three positive standard deviations")
    return mean, std


def document_classes(path: Path, doc: dict) -> list[SegClass]:
    """The classes of a model document; `ModelFileError` naming the file when malformed."""
    try:
        return as_classes(doc["classes"])
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: {exc}") from exc


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Read a model file written by `save_model`; the model comes back in eval mode on `device`.

    Never unpickles: PyTorch checkpoints are only opened with `torch.load(weights_only=True)` to say
    what they hold, and are refused (import mmsegmentation checkpoints with `import_mmseg`).
    """
    path = Path(path)
    doc = read_model_metadata(path)
    config = dict(doc["config"])
    classes = document_classes(path, doc)
    document_normalization(path, doc)
    name = config.pop("name", None)
    try:
        if not isinstance(name, str):
            raise ValueError(f"the config's architecture name must be a string, got {name!r:.80}")
        architecture_class(name)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from exc
    num_classes = config.pop("num_classes", None)
    if num_classes != len(classes):
        raise ModelFileError(f"{path}: the config has {num_classes} classes but {len(classes)} class names")
    # A file never makes us download or read other files: weights come from this file only.
    config.pop("pretrained", None)
    config = {k: _tuples(v) for k, v in config.items()}  # as the constructors expect them
    try:
        model = create_model(name, num_classes, **config)
    except (ValueError, TypeError, KeyError, RuntimeError, AssertionError, AttributeError, RecursionError,
            IndexError, OverflowError, MemoryError) as exc:
        raise ModelFileError(f"{path}: cannot build the {name} model from its config: {exc}") from exc
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a readable model file: truncated or corrupt ({_first_line(exc)})") from exc
    _check_state(path, model, state, len(classes), name, config)
    model.load_state_dict(state)
    model.backbone_weights = doc.get("backbone_weights")  # None: a file written before this was recorded
    doc.pop("config")
    doc.pop("classes")
    return LoadedModel(model.eval().to(device), classes, doc, path)


def _check_kind(path: Path) -> None:
    """`ModelFileError` unless `path` is a file that could be a safetensors model file."""
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not head:
        raise ModelFileError(f"{path}: the file is empty")
    if head[8:9] == b"{":
        return  # a safetensors header
    if path.suffix.lower() == ".onnx":
        raise ModelFileError(f"{path}: an ONNX file, not a SegAssist model file; run it with Predictor(path)")
    if head[:2] == b"PK" or head[:1] == b"\x80" or path.suffix.lower() in _TORCH_SUFFIXES:
        raise ModelFileError(f"{path}: {_describe_checkpoint(path)}")


def _describe_checkpoint(path: Path) -> str:
    # Opened with weights_only=True only to tell the person what the file is; nothing in it runs.
    try:
        state = read_state_dict(path)
    except WeightsFileError as exc:
        return f"a PyTorch checkpoint that cannot be used: {str(exc).removeprefix(f'{path}: ')}"
    return f"a PyTorch checkpoint, not a SegAssist model file; {_guess_weights(list(state))}"


def _guess_weights(keys: list[str]) -> str:
    head = ", ".join(keys[:3])
    if any(k.startswith(("decode_head.", "auxiliary_head.")) for k in keys):
        return (f"its {len(keys)} tensors ({head}, ...) look like a segmentation checkpoint: "
                f"import mmsegmentation checkpoints with engine.import_mmseg(path)")
    return (f"its {len(keys)} tensors ({head}, ...) look like backbone weights: "
            f"use them with create_model(..., pretrained=path)")


def _tuples(value: object) -> object:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _class_tensors(name: str, num_classes: int, config: dict) -> dict[str, int]:
    """Parameter names whose shape depends on the class count, with the dimension that holds it."""
    try:
        with torch.device("meta"):
            a = create_model(name, num_classes, **config).state_dict()
            b = create_model(name, num_classes + 1, **config).state_dict()
    except Exception:  # a model that cannot be built on the meta device: the caller guesses
        return {}
    out = {}
    for k, t in a.items():
        if k in b and t.shape != b[k].shape:
            out[k] = next(i for i, (m, n) in enumerate(zip(t.shape, b[k].shape, strict=False)) if m != n)
    return out


def _guess_class_tensors(own: dict, state: dict, wrong: list[str], num_classes: int) -> dict[str, int]:
    """Wrong-shaped tensors that differ from the model's in one dimension, which holds the class count."""
    out = {}
    for k in wrong:
        if state[k].dim() != own[k].dim():
            continue
        diffs = [i for i, (m, n) in enumerate(zip(own[k].shape, state[k].shape, strict=True)) if m != n]
        if len(diffs) == 1 and own[k].shape[diffs[0]] == num_classes:
            out[k] = diffs[0]
    return out


def _check_state(path: Path, model: SegModel, state: dict[str, torch.Tensor], num_classes: int, name: str,
                 config: dict) -> None:
    own = model.state_dict()
    for k, t in state.items():
        if k in own and (t.layout != torch.strided or t.is_floating_point() != own[k].is_floating_point()
                         or t.is_complex() or t.dtype == torch.bool):
            raise ModelFileError(f"{path}: tensor {k} is {t.dtype} ({t.layout}); the model needs "
                                 f"{own[k].dtype} values")
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if wrong:
        dims = _class_tensors(name, num_classes, config) or _guess_class_tensors(own, state, wrong, num_classes)
        counts = {state[k].shape[dims[k]] for k in wrong if k in dims and state[k].dim() > dims[k]}
        if counts:
            raise ModelFileError(
                f"{path}: the metadata names {num_classes} classes but the weights have "
                f"{', '.join(map(str, sorted(counts)))} outputs"
            )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensors ({', '.join(missing[:4])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors ({', '.join(unexpected[:4])})")
    if wrong:
        shapes = "; ".join(f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in wrong[:3])
        problems.append(f"{len(wrong)} tensors of the wrong shape ({shapes})")
    if problems:
        raise ModelFileError(f"{path}: weights do not match the {model.arch} config: {'; '.join(problems)}")
