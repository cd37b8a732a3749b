"""Generated projects: small images with label maps that have holes, touching regions, every class and 255."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.storage.project import Project
from engine.images import write_image, write_label

CLASSES = ["background", "road", "car", "person", "sky"]
H, W = 48, 64


def label_map(seed: int, num_classes: int = len(CLASSES)) -> np.ndarray:
    """Every class, touching rectangles, a ring with an unlabelled hole, a ring around another class,
    single pixels and diagonal neighbours, a 255 border."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((H, W), np.uint8)
    labels[:, W // 2:] = 1                       # two halves touching
    labels[5:20, 5:25] = 2                       # a ring of class 2 ...
    labels[9:16, 9:21] = 255                     # ... with an unlabelled hole
    labels[25:40, 30:50] = 3                     # a ring of class 3 ...
    labels[29:36, 35:45] = num_classes - 1       # ... around the last class
    labels[42, 3] = labels[43, 4] = 3            # diagonal neighbours (one 8-connected region)
    labels[2, 60] = 2                            # a single pixel
    labels[0, :] = 255                           # an unlabelled border
    labels[:, 0] = 255
    y, x = rng.integers(20, 44), rng.integers(2, 28)
    labels[y:y + 3, x:x + 4] = rng.integers(0, num_classes)
    return labels


@pytest.fixture
def make_project(tmp_path):
    """make_project(name, labelled=True, classes=CLASSES, n=3) -> (Project, {stem: labels})."""

    def make(name: str = "a", *, labelled: bool = True, classes=CLASSES, n: int = 3, suffix: str = ".png"):
        folder = tmp_path / name
        folder.mkdir()
        rng = np.random.default_rng(0)
        maps = {}
        for i in range(n):
            write_image(folder / f"img_{i}{suffix}", rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
            maps[f"img_{i}"] = label_map(i, len(classes))
        if labelled:
            from engine.classes import as_classes

            for stem, labels in maps.items():
                write_label(folder / "labels" / f"{stem}.png", labels, as_classes(classes))
        project = Project.open(folder, classes)
        if labelled:
            project.set_status(project.entry("img_0"), "reviewed")
        return project, maps

    return make
