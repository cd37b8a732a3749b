"""Shared pieces of the training tests: a synthetic data set on disk and a tiny model configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import engine
from resources.synthetic import make_scribbles, make_shapes
from training import TrainConfig

CLASSES = ("background", "disk", "box")
# DeepLabV3+ on timm's test_resnet with narrow heads: a training step on a 32-px crop takes milliseconds.
TINY_OPTIONS = {"output_stride": 8, "channels": 16, "c1_channels": 8, "aux_channels": 8}
TINY_ARGS = ["--arch", "deeplabv3plus", "--backbone", "test_resnet"] + [
    a for k, v in TINY_OPTIONS.items() for a in ("--option", f"{k}={v}")]


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a busy two-core machine, two spinning threads are many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_shapes(folder: Path, n: int, size: int, seed: int, *, scribbles: float | None = None,
                 classes=CLASSES) -> tuple[Path, Path]:
    """`folder/images/NNN.png` and `folder/labels/NNN.png` from the synthetic generator."""
    images, labels = folder / "images", folder / "labels"
    for i, (image, lab) in enumerate(make_shapes(n, size, seed, classes)):
        engine.write_image(images / f"{i:03d}.png", image)
        if scribbles is not None:
            lab = make_scribbles(lab, scribbles, seed=seed * 1000 + i)
        engine.write_label(labels / f"{i:03d}.png", lab, engine.as_classes(classes))
    return images, labels


@pytest.fixture
def shapes(tmp_path) -> tuple[Path, Path]:
    """Six 48-px labelled images."""
    return write_shapes(tmp_path / "data", 6, 48, seed=3)


def tiny_config(images: Path, labels: Path, out: Path, **overrides) -> TrainConfig:
    settings = dict(images=images, labels=labels, out=out, classes=CLASSES, arch="deeplabv3plus",
                    backbone="test_resnet", model_options=dict(TINY_OPTIONS), iterations=6, batch_size=2,
                    crop_size=32, precision="fp32", device="cpu", log_interval=2)
    settings.update(overrides)
    return TrainConfig(**settings)


def finite_state(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())


def label_file(path: Path, labels: np.ndarray) -> Path:
    return engine.write_label(path, labels.astype(np.uint8))
