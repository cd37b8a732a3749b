"""Fixtures shared by the engine tests."""

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

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


@dataclass
class Exported:
    model_file: Path
    onnx_file: Path
    exit_code: int  # of segassist-export, which wrote the ONNX file
    printed: str


@pytest.fixture(scope="session")
def tiny_exported(tiny_model_file):
    """`tiny_model_file` exported once per session by `segassist-export` (an export takes seconds)."""
    from engine.cli import export

    onnx_file = tiny_model_file.with_suffix(".onnx")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = export.main([str(tiny_model_file), "--onnx", str(onnx_file)])
    return Exported(tiny_model_file, onnx_file, code, printed.getvalue())
