"""Export to ONNX with dynamic height and width, carrying the model file's metadata."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.atomic import atomic_path
from engine.model_file import METADATA_KEY, LoadedModel, load_model, model_document, read_model_metadata
from engine.models.base import SegModel

OPSET = 18
# The smallest height and width the exported graph accepts.
MIN_SIDE = 32


def export_onnx(model: nn.Module | LoadedModel | str | Path, path: str | Path, *, dynamic: bool = True,
                example_size: tuple[int, int] = (256, 256), metadata: dict[str, str] | None = None,
                classes=None) -> Path:
    """Write a model (inputs `image` [B,3,H,W] -> `logits` [B,K,H,W]) to one ONNX file at `path`.

    `model` is a module, a `LoadedModel` or the path of a model file. For SegAssist models the file's
    metadata_props hold, under "segassist", the model file's JSON document (config, classes, normalisation,
    crop size, history), so the ONNX file alone is enough to predict; a bare `SegModel` gets `classes`
    (default `class0`...). `metadata` adds string entries. With `dynamic`, batch, height and width are free
    (height and width from `MIN_SIDE`). The file is written atomically.
    """
    import onnx

    module, doc = _module_and_document(model, classes)
    path = Path(path)
    props = {} if doc is None else {METADATA_KEY: json.dumps(doc)}
    props.update({str(k): str(v) for k, v in (metadata or {}).items()})
    was_training = module.training
    module.eval()
    x = torch.randn(2, 3, *example_size)  # batch 1 would be specialised away
    dynamic_shapes = None
    if dynamic:
        dim = torch.export.Dim
        # Sizes and batch vary at run time; the minimum keeps the exported graph valid for small inputs.
        dynamic_shapes = {"x": {0: dim("batch", min=1, max=1024), 2: dim("height", min=MIN_SIDE, max=32768),
                                3: dim("width", min=MIN_SIDE, max=32768)}}
    try:
        with torch.no_grad():
            program = torch.onnx.export(module, (x,), dynamo=True, external_data=False, opset_version=OPSET,
                                        input_names=["image"], output_names=["logits"],
                                        dynamic_shapes=dynamic_shapes, verbose=False)
    finally:
        module.train(was_training)
    proto = program.model_proto
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))
    return path


def onnx_relative_error(model: nn.Module, path: str | Path, sizes: Iterable[tuple[int, int]] = ((256, 256), (193, 321)),
                        *, batch: int = 2, seed: int = 0) -> float:
    """The largest relative error, over `sizes`, of onnxruntime (CPU) running `path` against `model`
    in float32 on random inputs: max |torch - onnx| / max |torch|."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    model.eval()
    worst = 0.0
    for h, w in sizes:
        x = torch.randn(batch, 3, h, w, generator=generator)
        with torch.no_grad():
            want = model(x.to(device)).float().cpu().numpy()
        (got,) = session.run(None, {name: x.numpy()})
        if got.shape != want.shape:
            raise ValueError(f"{path}: onnxruntime returned shape {got.shape} for input {tuple(x.shape)}, "
                             f"torch {want.shape}")
        worst = max(worst, float(np.abs(want - got).max() / max(float(np.abs(want).max()), 1e-12)))
    return worst


def _module_and_document(model, classes) -> tuple[nn.Module, dict | None]:
    if isinstance(model, str | Path):
        doc = read_model_metadata(model)
        return load_model(model).model, doc
    if isinstance(model, LoadedModel):
        return model.model, model_document(model.model, classes=model.classes, **model.meta)
    if isinstance(model, SegModel) and hasattr(model, "config"):
        names = classes if classes is not None else [f"class{i}" for i in range(model.num_classes)]
        return model, model_document(model, classes=names)
    if classes is not None:
        raise ValueError("classes are kept only for SegAssist models (SegModel, LoadedModel, model files)")
    return model, None
