"""Fixtures shared by the engine tests."""

import pytest
import torch

import engine
from tests.engine.tiny import tiny_model

TINY_CLASSES = ["sky", "road", {"name": "car", "color": [10, 20, 30]}, "tree", "person"]


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory):
    """A tiny DeepLabV3+ model file: 5 classes (class 2 coloured (10, 20, 30)), crop size 64."""
    folder = tmp_path_factory.mktemp("tiny-model")
    torch.manual_seed(0)
    model = tiny_model("deeplabv3plus", num_classes=5)
    with torch.no_grad():
        for p in model.parameters():  # wake up zero-initialised scales so every path counts
            if not p.any():
                p.fill_(0.5)
    model_file = engine.save_model(folder / "m.safetensors", model, classes=TINY_CLASSES, crop_size=[64, 64],
                                   history=[{"iterations": 7}])
    return model_file


@pytest.fixture(scope="session")
def tiny_exported(tiny_model_file):
    """`tiny_model_file` and its ONNX export, made once per session."""
    return tiny_model_file, engine.export_onnx(tiny_model_file, tiny_model_file.with_suffix(".onnx"))
