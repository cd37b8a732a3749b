"""Everything design.md lists is importable from `engine` itself, and stays so once every module is loaded."""

import importlib
import pkgutil
import types

import engine

DESIGNED = ("list_architectures", "create_model", "explain", "save_model", "load_model", "import_mmseg",
            "export_onnx", "Predictor", "Prediction", "SegModel")


def test_public_names_resolve_to_objects_not_modules():
    for info in pkgutil.walk_packages(engine.__path__, "engine."):
        importlib.import_module(info.name)  # a submodule named like an export must not shadow it
    for name in engine.__all__:
        value = getattr(engine, name)
        assert not isinstance(value, types.ModuleType), f"engine.{name} is a module"
    assert set(DESIGNED) <= set(engine.__all__)
