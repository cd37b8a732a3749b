"""SegAssist's engine: segmentation models and inference. No Qt in here.

Names are imported on first use, so `import engine.images` (used by the app to show images) does not pay
for torch and timm.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "engine.cancel": ("Cancelled",),
    "engine.classes": ("SegClass", "as_classes", "default_color", "palette", "void_color"),
    "engine.explanations": ("explain",),
    "engine.images": ("IGNORE_INDEX", "ImageReadError", "image_size", "is_image_file", "list_images", "read_image",
                      "read_label", "write_image", "write_label"),
    "engine.mmseg_import": ("MMSegImportError", "import_mmseg"),
    "engine.model_file": ("LoadedModel", "ModelFileError", "load_model", "read_model_metadata", "save_model"),
    "engine.models.base": ("SegModel",),
    "engine.onnx_export": ("export_onnx", "onnx_relative_error"),
    "engine.predictor": ("Prediction", "Predictor"),
    "engine.preprocessing": ("preprocess",),
    "engine.registry": ("architecture_options", "create_model", "list_architectures", "register_architecture"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
