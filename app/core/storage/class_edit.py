"""Deleting and reordering a project's classes, with every label file remapped as one change.

`reorder_classes(project, order)`: `order` lists the old class indices in their new order; a class left
out is deleted (its pixels become 255, "not labelled"). The remapped label files are written beside the
old ones first; a plan file then commits the change, and the files are swapped in. A crash before the
plan leaves the old labels and classes; after it, `finish_pending` (at the next open) completes it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.core.storage.predictions import PredictionFileError, read_prediction, write_prediction
from engine.atomic import atomic_write_bytes, fsync_dir
from engine.classes import as_classes
from engine.images import read_label, write_label

IGNORE_INDEX = 255
PLAN = "class-change.json"
STAGED = ".remap.png"


def remap_table(num_classes: int, order: Sequence[int]) -> np.ndarray:
    """A 256-entry table old index -> new index (255 for deleted classes and for 255)."""
    if len(set(order)) != len(order) or any(not 0 <= i < num_classes for i in order):
        raise ValueError(f"a new class order must list distinct classes of 0-{num_classes - 1}, got {list(order)}")
    if not order:
        raise ValueError("a project keeps at least one class")
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    for new, old in enumerate(order):
        lut[old] = new
    return lut


def _plan_path(project) -> Path:
    return Path(project.folder) / ".segassist" / PLAN


def reorder_classes(project, order: Sequence[int]) -> np.ndarray:
    """Give `project` the classes `[classes[i] for i in order]` and remap every label file (and cached
    proposal) to match. Returns the old -> new table. Raises ValueError/OSError and then changes nothing."""
    lut = remap_table(len(project.classes), order)
    new_classes = as_classes([project.classes[i] for i in order])
    moves: list[tuple[str, str]] = []
    staged: list[Path] = []
    try:
        for entry in project.images:
            label = project.label_path(entry)
            if entry.error is not None or not label.exists():
                continue
            labels = read_label(label, len(project.classes))
            tmp = label.with_name(f".{label.stem}{STAGED}")
            write_label(tmp, lut[labels], new_classes)
            staged.append(tmp)
            moves.append((tmp.name, label.name))
        plan = {"classes": [c.to_json() for c in new_classes], "moves": moves}
        atomic_write_bytes(_plan_path(project), json.dumps(plan).encode("utf-8"))  # the change is committed here
    except BaseException:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
        raise
    _complete(project, plan)
    _remap_predictions(project, lut)
    return lut


def finish_pending(project) -> bool:
    """Complete a class change a crash interrupted (or drop files staged for one never committed).
    Returns True when a change was completed."""
    path = _plan_path(project)
    labels_dir = Path(project.labels_dir)
    if not path.exists():
        if labels_dir.is_dir():
            for stray in labels_dir.glob(f".*{STAGED}"):
                stray.unlink(missing_ok=True)
        return False
    _complete(project, json.loads(path.read_text("utf-8")))
    return True


def _complete(project, plan: dict) -> None:
    labels_dir = Path(project.labels_dir)
    for tmp, dst in plan["moves"]:
        if (labels_dir / tmp).exists():
            os.replace(labels_dir / tmp, labels_dir / dst)
    fsync_dir(labels_dir)
    project.classes = as_classes(plan["classes"])
    project.save()
    _plan_path(project).unlink(missing_ok=True)


def _remap_predictions(project, lut: np.ndarray) -> None:
    """Cached proposals follow the new numbering; one that cannot be rewritten is dropped (it is a cache)."""
    for entry in project.images:
        path = project.prediction_path(entry)
        if not path.exists():
            continue
        try:
            cached = read_prediction(path)
            write_prediction(path, lut[cached.labels], cached.confidence, cached.entropy, model=cached.model)
        except (PredictionFileError, OSError, ValueError):
            path.unlink(missing_ok=True)
