"""Model files: round trip and the errors that name the file."""

import pytest
import torch

import engine
from tests.engine.tiny import tiny_model


@pytest.mark.parametrize("name", engine.list_architectures())
def test_round_trip_gives_identical_outputs_and_metadata(name, tmp_path):
    model = tiny_model(name, num_classes=3).eval()
    classes = ["sky", "road", {"name": "car", "color": [1, 2, 3]}]
    path = engine.save_model(tmp_path / "m.safetensors", model, classes=classes, crop_size=[128, 128],
                             history=[{"iterations": 10}])
    loaded = engine.load_model(path)
    assert not loaded.model.training
    assert [c.name for c in loaded.classes] == ["sky", "road", "car"] and loaded.classes[2].color == (1, 2, 3)
    assert loaded.meta["crop_size"] == [128, 128] and loaded.meta["history"] == [{"iterations": 10}]
    assert loaded.model.config == model.config
    x = torch.randn(1, 3, 45, 67)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"


def test_truncated_file_is_named(tmp_path):
    path = engine.save_model(tmp_path / "m.safetensors", tiny_model("encnet"), classes=["a", "b", "c"])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(engine.ModelFileError, match=r"m.safetensors: .*(truncated|corrupt)"):
        engine.load_model(path)


def test_class_count_disagreeing_with_the_weights_is_named(tmp_path):
    path = tmp_path / "m.safetensors"
    engine.save_model(path, tiny_model("ccnet", num_classes=3), classes=["a", "b", "c"])
    wrong = tmp_path / "wrong.safetensors"
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        doc = json.loads(f.metadata()["segassist"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    doc["config"]["num_classes"] = 4
    doc["classes"].append({"name": "d", "color": [9, 9, 9]})
    save_file(tensors, str(wrong), metadata={"segassist": json.dumps(doc)})
    with pytest.raises(engine.ModelFileError,
                       match="wrong.safetensors: the metadata names 4 classes but the weights have 3"):
        engine.load_model(wrong)
