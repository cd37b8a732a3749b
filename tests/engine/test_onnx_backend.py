"""The ONNX backend: an exported file alone predicts like the torch model it came from."""

import json
import shutil

import numpy as np
import onnx
import pytest

import engine
import engine.onnx_export


def test_export_of_a_model_file_carries_its_metadata(tiny_exported):
    model_file, onnx_file = tiny_exported.model_file, tiny_exported.onnx_file
    props = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    doc = json.loads(props["segassist"])
    want = engine.read_model_metadata(model_file)
    assert doc == want
    assert doc["classes"][2] == {"name": "car", "color": [10, 20, 30]} and doc["crop_size"] == [64, 64]
    loaded = engine.load_model(model_file)
    assert engine.onnx_relative_error(loaded.model, onnx_file, [(64, 80)]) < 1e-4


def test_onnx_file_alone_predicts_like_torch(tiny_exported):
    model_file, onnx_file = tiny_exported.model_file, tiny_exported.onnx_file
    torch_predictor = engine.Predictor(model_file, precision="fp32", tile=128)
    onnx_predictor = engine.Predictor(onnx_file, tile=128)
    assert (onnx_predictor.backend, onnx_predictor.precision, onnx_predictor.model) == ("onnx", "fp32", None)
    assert onnx_predictor.classes == torch_predictor.classes
    assert onnx_predictor.normalization == torch_predictor.normalization
    assert onnx_predictor.meta["crop_size"] == [64, 64]
    image = np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    want = torch_predictor.predict(image)
    got = onnx_predictor.predict(image)
    assert got.backend == "onnx" and got.tiles == want.tiles > 1
    assert (got.labels == want.labels).mean() >= 0.99
    np.testing.assert_allclose(got.confidence, want.confidence, atol=1e-3)


def test_onnx_backend_from_a_torch_model_exports_it_first(tiny_exported, monkeypatch):
    model_file, onnx_file = tiny_exported.model_file, tiny_exported.onnx_file
    loaded = engine.load_model(model_file)
    exports = []

    def export(model, path, **kwargs):  # the real export is tested above; here, what the predictor does with it
        exports.append(model)
        shutil.copy(onnx_file, path)
        return path

    monkeypatch.setattr(engine.onnx_export, "export_onnx", export)
    via_onnx = engine.Predictor(loaded, backend="onnx")
    assert exports == [loaded] and via_onnx.backend == "onnx" and via_onnx.model is None
    image = np.random.default_rng(2).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    via_torch = engine.Predictor(loaded, precision="fp32").predict(image)
    assert (via_onnx.predict(image).labels == via_torch.labels).mean() >= 0.99


def test_onnx_files_without_metadata_or_broken_are_refused_with_the_file_named(tiny_exported, tmp_path):
    onnx_file = tiny_exported.onnx_file
    proto = onnx.load(str(onnx_file))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save_model(proto, str(bare))
    with pytest.raises(engine.ModelFileError, match="bare.onnx: an ONNX file without SegAssist metadata"):
        engine.Predictor(bare)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(onnx_file.read_bytes()[:1000])
    with pytest.raises(engine.ModelFileError, match="broken.onnx: not a readable ONNX file"):
        engine.Predictor(broken)
    with pytest.raises(engine.ModelFileError, match="absent.onnx: no such file"):
        engine.Predictor(tmp_path / "absent.onnx")
    with pytest.raises(ValueError, match="fp32"):
        engine.Predictor(onnx_file, precision="bf16")


def test_export_takes_the_metadata_from_a_path_a_loaded_model_or_a_bare_model(tiny_model_file):
    from engine.onnx_export import _module_and_document
    from tests.engine.tiny import tiny_model

    want = engine.read_model_metadata(tiny_model_file)
    module, doc = _module_and_document(tiny_model_file, None)
    assert doc == want and isinstance(module, engine.SegModel)
    assert _module_and_document(engine.load_model(tiny_model_file), None)[1] == want
    bare = tiny_model("ccnet", num_classes=2)
    doc = _module_and_document(bare, None)[1]
    assert [c["name"] for c in doc["classes"]] == ["class0", "class1"] and doc["config"] == bare.config
    assert _module_and_document(bare, ["cat", "dog"])[1]["classes"][1]["name"] == "dog"
