"""ONNX export with dynamic height and width, checked against torch in onnxruntime."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import engine
from tests.engine.tiny import tiny_model


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(a).max())


@pytest.mark.parametrize("name", engine.list_architectures())
def test_onnx_runs_at_two_sizes_like_torch(name, tmp_path):
    model = tiny_model(name, num_classes=4).eval()
    with torch.no_grad():
        for p in model.parameters():  # wake up zero-initialised scales so every path counts
            if not p.any():
                p.fill_(0.5)
    path = engine.export_onnx(model, tmp_path / f"{name}.onnx", metadata={"arch": name})
    assert [p.name for p in tmp_path.iterdir()] == [f"{name}.onnx"], "one self-contained file"
    proto = onnx.load(str(path))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert {p.key: p.value for p in proto.metadata_props}["arch"] == name
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size in [(97, 131), (64, 48)]:
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            want = model(x).numpy()
        (got,) = session.run(None, {"image": x.numpy()})
        assert got.shape == (2, 4, *size)
        assert relative_error(want, got) < 1e-3, size
