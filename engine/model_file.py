"""Model files: one `.safetensors` file, the weights plus a JSON document in the header's metadata."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from engine.classes import SegClass, as_classes
from engine.models.base import SegModel
from engine.registry import architecture_class, create_model

METADATA_KEY = "segassist"
FORMAT_VERSION = 1


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
    """
    path = Path(path)
    classes = as_classes(classes)
    if len(classes) != model.num_classes:
        raise ValueError(f"{path}: {len(classes)} class names for a model with {model.num_classes} outputs")
    mean, std = model.normalization
    doc = {
        "format": "segassist-model",
        "version": FORMAT_VERSION,
        "config": model.config,
        "classes": [c.to_json() for c in classes],
        "normalization": {"mean": list(mean), "std": list(std)},
        "history": [],
        **meta,
    }
    try:
        header = {METADATA_KEY: json.dumps(doc)}
    except TypeError as exc:
        raise ValueError(f"{path}: metadata must be JSON data ({exc})") from exc
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=header)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_model_metadata(path: str | Path) -> dict:
    """The JSON document of a model file, without reading its weights."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a readable model file: truncated or corrupt ({exc})") from exc
    if METADATA_KEY not in header:
        raise ModelFileError(
            f"{path}: a safetensors file without SegAssist metadata; for plain backbone weights use "
            f"create_model(..., pretrained=path), for mmsegmentation checkpoints import_mmseg(path)"
        )
    try:
        doc = json.loads(header[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: the SegAssist metadata is not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict) or "classes" not in doc:
        raise ModelFileError(f"{path}: the SegAssist metadata lacks the architecture config or the classes")
    return doc


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Read a model file written by `save_model`; the model comes back in eval mode on `device`."""
    path = Path(path)
    if path.suffix in (".pth", ".pt", ".ckpt", ".bin"):
        raise ModelFileError(
            f"{path}: a PyTorch checkpoint, not a SegAssist model file; import mmsegmentation checkpoints "
            f"with import_mmseg(path) (read without unpickling code)"
        )
    doc = read_model_metadata(path)
    config = dict(doc["config"])
    try:
        classes = as_classes(doc["classes"])
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from exc
    name = config.pop("name", None)
    try:
        architecture_class(name)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from exc
    num_classes = config.pop("num_classes", None)
    if num_classes != len(classes):
        raise ModelFileError(f"{path}: the config has {num_classes} classes but {len(classes)} class names")
    try:
        model = create_model(name, num_classes, **config)
    except ValueError as exc:
        raise ModelFileError(f"{path}: cannot build the model: {exc}") from exc
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a readable model file: truncated or corrupt ({exc})") from exc
    _check_state(path, model, state, len(classes))
    model.load_state_dict(state)
    doc.pop("config")
    doc.pop("classes")
    return LoadedModel(model.eval().to(device), classes, doc, path)


def _check_state(path: Path, model: SegModel, state: dict[str, torch.Tensor], num_classes: int) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    class_dims = {state[k].shape[0] for k in wrong if k.endswith("conv_seg.weight")}
    if class_dims:
        raise ModelFileError(
            f"{path}: the metadata names {num_classes} classes but the weights have "
            f"{', '.join(map(str, sorted(class_dims)))} outputs"
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
