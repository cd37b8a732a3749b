"""SegAssist's engine: segmentation models and inference. No Qt in here."""

from engine.models.base import SegModel
from engine.onnx_export import export_onnx
from engine.registry import architecture_options, create_model, list_architectures, register_architecture

__all__ = [
    "SegModel",
    "architecture_options",
    "create_model",
    "export_onnx",
    "list_architectures",
    "register_architecture",
]
