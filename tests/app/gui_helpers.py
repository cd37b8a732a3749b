"""Small projects and models for the GUI tests: a few synthetic images, a tiny network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import engine


def shapes_image(seed: int, size: tuple[int, int] = (48, 64)) -> tuple[np.ndarray, np.ndarray]:
    """A textured image with one bright rectangle, and its labels (0 background, 1 object)."""
    rng = np.random.default_rng(seed)
    h, w = size
    image = rng.integers(20, 90, (h, w, 3), dtype=np.uint8)
    labels = np.zeros((h, w), np.uint8)
    y0, x0 = rng.integers(4, h // 2), rng.integers(4, w // 2)
    y1, x1 = y0 + rng.integers(8, h // 2), x0 + rng.integers(8, w // 2)
    image[y0:y1, x0:x1] = rng.integers(170, 250, 3, dtype=np.uint8)
    labels[y0:y1, x0:x1] = 1
    return image, labels


def make_project(folder: Path, n: int = 3, size: tuple[int, int] = (48, 64), labelled: int = 0) -> Path:
    """`n` images in `folder`; the first `labelled` get label files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(exist_ok=True)
    for i in range(n):
        image, labels = shapes_image(i, size)
        engine.write_image(folder / f"img{i:02d}.png", image)
        if i < labelled:
            engine.write_label(folder / "labels" / f"img{i:02d}.png", labels)
    return folder


def tiny_model_file(path: Path, classes=("background", "object"), seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = engine.create_model("deeplabv3plus", len(classes), backbone="test_resnet", output_stride=8,
                                channels=16, c1_channels=8, aux_channels=8)
    return engine.save_model(path, model, classes=list(classes))


TINY_RUN_OPTIONS = "output_stride=8 channels=16 c1_channels=8 aux_channels=8"


def set_tiny_run(panel, options: str = TINY_RUN_OPTIONS) -> None:
    """The Training panel set for a tiny run in seconds: narrow heads, 2 iterations of 32 px crops, CPU fp32."""
    panel.options.setText(options)
    panel.iters.setValue(2)
    panel.crop.setValue(32)
    panel.batch.setValue(2)
    panel.device.setCurrentText("cpu")
    panel.precision.setCurrentText("fp32")
