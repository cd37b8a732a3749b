"""The model a run starts from: a fresh architecture, or a model file (with new classes added)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from engine import SegClass, SegModel, create_model, load_model
from training.config import TrainConfig

DEFAULT_ARCH = "deeplabv3plus"

log = logging.getLogger("training")


@dataclass
class Start:
    """The initial model, its classes and normalisation, and what it descends from."""

    model: SegModel
    classes: list[SegClass]
    normalization: dict
    parent: dict | None = None
    history: list | None = None


def initial_model(cfg: TrainConfig) -> Start:
    """Build `cfg`'s architecture, or load `cfg.init` and widen its classifier to `cfg.classes`."""
    if cfg.init is None:
        arch = cfg.arch or DEFAULT_ARCH
        model = create_model(arch, len(cfg.classes), backbone=cfg.backbone, pretrained=cfg.pretrained,
                             **cfg.model_options)
        mean, std = model.normalization
        return Start(model, list(cfg.classes), {"mean": list(mean), "std": list(std)})
    loaded = load_model(cfg.init)
    old = loaded.model
    current = {"arch": old.config["name"], "backbone": old.config.get("backbone")}
    conflicts = [f"--{k} {v} (the model's is {current[k]})"
                 for k, v in (("arch", cfg.arch), ("backbone", cfg.backbone)) if v not in (None, current[k])]
    if conflicts:
        raise ValueError(f"{cfg.init}: fine-tuning keeps the model's architecture; drop {', '.join(conflicts)}")
    if cfg.model_options:
        raise ValueError(f"{cfg.init}: fine-tuning keeps the model's options; drop {sorted(cfg.model_options)}")
    classes = list(cfg.classes) if cfg.classes is not None else loaded.classes
    if len(classes) < len(loaded.classes):
        raise ValueError(
            f"{cfg.init}: the model has {len(loaded.classes)} classes "
            f"({', '.join(c.name for c in loaded.classes)}) but {len(classes)} are given; fine-tuning keeps "
            f"the model's classes and may only add new ones after them"
        )
    for i, (was, now) in enumerate(zip(loaded.classes, classes, strict=False)):
        if was.name != now.name:
            log.warning(f"class {i} is {was.name!r} in {cfg.init.name} and {now.name!r} now; its weights are kept "
                        f"(labels refer to classes by index)")
    model = old
    if len(classes) > old.num_classes:
        config = dict(old.config)
        name = config.pop("name")
        config.pop("num_classes")
        model = create_model(name, len(classes), **config)
        model.backbone_weights = getattr(old, "backbone_weights", None)
        model.load_state_dict(widen_state(old.state_dict(), model.state_dict(), old.num_classes, len(classes)))
    mean, std = loaded.normalization
    parent = {"name": cfg.init.name, "sha256": file_sha256(cfg.init)}
    return Start(model.train(), classes, {"mean": list(mean), "std": list(std)}, parent,
                 list(loaded.meta.get("history") or []))


def widen_state(old: dict[str, torch.Tensor], new: dict[str, torch.Tensor], k_old: int, k_new: int,
                ) -> dict[str, torch.Tensor]:
    """`new` (a freshly initialised model's state) with `old`'s values copied in.

    A tensor whose shape differs only in one dimension, of size `k_old` there and `k_new` in the new
    model, is copied slice-wise (the old classes' rows; the new rows keep their fresh initialisation);
    every other tensor must match exactly.
    """
    missing = sorted(set(new) ^ set(old))
    if missing:
        raise ValueError(f"the model files' tensors differ: {', '.join(missing[:5])}")
    out = {}
    for key, fresh in new.items():
        value = old[key]
        if value.shape == fresh.shape:
            out[key] = value.clone()
            continue
        dims = [d for d in range(value.dim()) if value.shape[d] != fresh.shape[d]] if value.dim() == fresh.dim() else []
        if len(dims) != 1 or value.shape[dims[0]] != k_old or fresh.shape[dims[0]] != k_new:
            raise ValueError(f"{key}: shape {tuple(value.shape)} cannot grow to {tuple(fresh.shape)} "
                             f"by adding classes ({k_old} -> {k_new})")
        widened = fresh.clone()
        widened.narrow(dims[0], 0, k_old).copy_(value)
        out[key] = widened
    return out


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
