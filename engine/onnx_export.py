"""Export to ONNX with dynamic height and width."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn

OPSET = 18


def export_onnx(model: nn.Module, path: str | Path, *, dynamic: bool = True, example_size: tuple[int, int] = (256, 256),
                metadata: dict[str, str] | None = None) -> Path:
    """Write `model` (inputs `image` [B,3,H,W] -> `logits` [B,K,H,W]) to one ONNX file at `path`.

    With `dynamic`, batch, height and width are free. `metadata` becomes the file's metadata_props.
    The file is written atomically.
    """
    import onnx

    path = Path(path)
    was_training = model.training
    model.eval()
    x = torch.randn(2, 3, *example_size)  # batch 1 would be specialised away
    dynamic_shapes = None
    if dynamic:
        dim = torch.export.Dim
        # Sizes and batch vary at run time; the minimum keeps the exported graph valid for small inputs.
        dynamic_shapes = {"x": {0: dim("batch", min=1, max=1024), 2: dim("height", min=32, max=32768),
                                3: dim("width", min=32, max=32768)}}
    try:
        with torch.no_grad():
            program = torch.onnx.export(model, (x,), dynamo=True, external_data=False, opset_version=OPSET,
                                        input_names=["image"], output_names=["logits"],
                                        dynamic_shapes=dynamic_shapes, verbose=False)
    finally:
        model.train(was_training)
    proto = program.model_proto
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        onnx.save_model(proto, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
