"""Fixtures shared by the engine tests."""

import contextlib
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import engine
from tests.engine.tiny import tiny_model
from tests.shared import built_once

TINY_CLASSES = ["sky", "road", {"name": "car", "color": [10, 20, 30]}, "tree", "person"]


def _write_tiny_model(folder: Path) -> None:
    torch.manual_seed(0)
    model = tiny_model("deeplabv3plus", num_classes=5)
    with torch.no_grad():
        for p in model.parameters():  # wake up zero-initialised scales so every path counts
            if not p.any():
                p.fill_(0.5)
    engine.save_model(folder / "m.safetensors", model, classes=TINY_CLASSES, crop_size=[64, 64],
                      history=[{"iterations": 7}])


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A tiny DeepLabV3+ model file: 5 classes (class 2 coloured (10, 20, 30)), crop size 64. Read-only."""
    return built_once(tmp_path_factory, "tiny-model", _write_tiny_model) / "m.safetensors"


@dataclass
class Exported:
    model_file: Path
    onnx_file: Path
    exit_code: int  # of segassist-export, which wrote the ONNX file
    printed: str


@pytest.fixture(scope="session")
def tiny_exported(tmp_path_factory, tiny_model_file) -> Exported:
    """A copy of `tiny_model_file` exported once per test run by `segassist-export` (an export takes seconds),
    alone in its folder. Read-only."""
    from engine.cli import export

    def build(folder: Path) -> None:
        (folder / "export").mkdir()
        model_file = Path(shutil.copy(tiny_model_file, folder / "export" / "m.safetensors"))
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = export.main([str(model_file), "--onnx", str(model_file.with_suffix(".onnx"))])
        (folder / "exit_code").write_text(str(code))
        (folder / "printed").write_text(printed.getvalue())

    folder = built_once(tmp_path_factory, "tiny-exported", build)
    return Exported(folder / "export" / "m.safetensors", folder / "export" / "m.onnx",
                    int((folder / "exit_code").read_text()), (folder / "printed").read_text())
