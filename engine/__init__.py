"""SegAssist's engine: segmentation models and inference. No Qt in here."""

from engine.classes import SegClass, as_classes, default_color, palette
from engine.explain import explain
from engine.images import (
    IGNORE_INDEX,
    ImageReadError,
    image_size,
    is_image_file,
    list_images,
    read_image,
    read_label,
    write_image,
    write_label,
)
from engine.mmseg_import import MMSegImportError, import_mmseg
from engine.model_file import LoadedModel, ModelFileError, load_model, read_model_metadata, save_model
from engine.models.base import SegModel
from engine.onnx_export import export_onnx, onnx_relative_error
from engine.predictor import Cancelled, Prediction, Predictor
from engine.registry import architecture_options, create_model, list_architectures, register_architecture

__all__ = [
    "IGNORE_INDEX",
    "Cancelled",
    "Prediction",
    "Predictor",
    "onnx_relative_error",
    "ImageReadError",
    "image_size",
    "is_image_file",
    "list_images",
    "read_image",
    "read_label",
    "write_image",
    "write_label",
    "LoadedModel",
    "MMSegImportError",
    "ModelFileError",
    "SegClass",
    "SegModel",
    "architecture_options",
    "as_classes",
    "create_model",
    "default_color",
    "explain",
    "export_onnx",
    "import_mmseg",
    "list_architectures",
    "load_model",
    "palette",
    "read_model_metadata",
    "register_architecture",
    "save_model",
]
