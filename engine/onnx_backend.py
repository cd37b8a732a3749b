"""Running an exported ONNX file with onnxruntime: normalised batches in, logits out."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from engine.classes import SegClass
from engine.model_file import (
    METADATA_KEY,
    ModelFileError,
    document_classes,
    document_normalization,
)


def onnx_cuda_available() -> bool:
    """Whether onnxruntime here can run on a CUDA GPU."""
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


class OnnxRunner:
    """An onnxruntime session over an exported SegAssist ONNX file, with its classes and normalisation.

    Calling it maps a normalised float batch `[B, 3, H, W]` (a torch tensor on any device) to logits
    `[B, K, H, W]` on the same device. Uses the CUDA provider when `device` is a CUDA device.
    """

    def __init__(self, path: str | Path, device: torch.device):
        import onnxruntime as ort

        self.path = path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"{path}: no such file")
        if device.type == "cuda":
            if not onnx_cuda_available():
                raise ValueError(f"{path}: onnxruntime here has no CUDA provider; use device='cpu'")
            providers = [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(path), providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
            raise ModelFileError(f"{path}: not a readable ONNX file ({str(exc).strip().splitlines()[0]})") from exc
        self.device = device
        self.input_name = self.session.get_inputs()[0].name
        props = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in props:
            raise ModelFileError(
                f"{path}: an ONNX file without SegAssist metadata (classes, normalisation); export it with "
                f"engine.export_onnx or segassist-export"
            )
        try:
            doc = json.loads(props[METADATA_KEY])
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"{path}: the SegAssist metadata is not valid JSON ({exc})") from exc
        if not isinstance(doc, dict) or "classes" not in doc:
            raise ModelFileError(f"{path}: the SegAssist metadata lacks the classes")
        self.classes: list[SegClass] = document_classes(path, doc)
        norm = document_normalization(path, doc)
        if norm is None:
            raise ModelFileError(f"{path}: the SegAssist metadata lacks the normalisation")
        self.normalization = norm
        self.meta = {k: v for k, v in doc.items() if k != "classes"}

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.detach().float().contiguous().cpu().numpy()
        (logits,) = self.session.run(None, {self.input_name: batch})
        if logits.shape[1] != len(self.classes):
            raise ModelFileError(f"{self.path}: the network gives {logits.shape[1]} outputs for "
                                 f"{len(self.classes)} classes in its metadata")
        return torch.from_numpy(logits).to(x.device)
