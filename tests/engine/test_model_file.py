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


def _rewrite(path, out, edit_doc=None, edit_tensors=None):
    """Copy the model file at `path` to `out` with its document and/or tensors edited."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        doc = json.loads(f.metadata()["segassist"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    if edit_doc:
        edit_doc(doc)
    if edit_tensors:
        edit_tensors(tensors)
    save_file(tensors, str(out), metadata={"segassist": json.dumps(doc)})
    return out


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    return engine.save_model(tmp_path / "m.safetensors", tiny_model("deeplabv3plus"), classes=["a", "b", "c"])


def test_unknown_architecture_is_named_with_the_known_ones(saved, tmp_path):
    path = _rewrite(saved, tmp_path / "arch.safetensors", lambda d: d["config"].update(name="unet"))
    with pytest.raises(engine.ModelFileError, match="arch.safetensors: unknown architecture 'unet'.*deeplabv3plus"):
        engine.load_model(path)


def test_missing_and_unexpected_tensors_are_named(saved, tmp_path):
    def edit(tensors):
        del tensors["decode_head.bottleneck.conv.weight"]
        tensors["extra.weight"] = torch.zeros(2)

    path = _rewrite(saved, tmp_path / "t.safetensors", edit_tensors=edit)
    with pytest.raises(engine.ModelFileError, match=r"t.safetensors: weights do not match the deeplabv3plus config: "
                                                    r"1 missing tensors \(decode_head.bottleneck.conv.weight\); "
                                                    r"1 unexpected tensors \(extra.weight\)"):
        engine.load_model(path)


def test_a_config_option_the_architecture_lacks_is_named(saved, tmp_path):
    path = _rewrite(saved, tmp_path / "o.safetensors", lambda d: d["config"].update(wings=2))
    with pytest.raises(engine.ModelFileError, match="o.safetensors: cannot build the deeplabv3plus model.*wings"):
        engine.load_model(path)


def test_a_file_never_makes_the_loader_fetch_or_read_other_weights(saved, tmp_path, monkeypatch):
    victim = tmp_path / "other.safetensors"
    path = _rewrite(saved, tmp_path / "p.safetensors", lambda d: d["config"].update(pretrained=str(victim)))
    from engine import model_file

    built = []
    real = model_file.create_model
    monkeypatch.setattr(model_file, "create_model", lambda *a, **k: built.append(k) or real(*a, **k))
    loaded = engine.load_model(path)  # the missing file named by "pretrained" is never opened
    assert built and all("pretrained" not in k for k in built)  # the model is built without it
    expected = engine.load_model(saved).model.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.model.state_dict().items())


def test_metadata_that_is_not_json_or_too_new_is_named(saved, tmp_path):
    from safetensors.torch import save_file

    bad = tmp_path / "j.safetensors"
    save_file({"w": torch.zeros(1)}, str(bad), metadata={"segassist": "{config: oops"})
    with pytest.raises(engine.ModelFileError, match="j.safetensors: the SegAssist metadata is not valid JSON"):
        engine.load_model(bad)
    newer = _rewrite(saved, tmp_path / "v.safetensors", lambda d: d.update(version=99))
    with pytest.raises(engine.ModelFileError, match="v.safetensors: written in model file format version 99"):
        engine.load_model(newer)


def test_a_header_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "h.safetensors"
    header = b"{this is not json}"
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 16)
    with pytest.raises(engine.ModelFileError, match="h.safetensors: not a readable model file: truncated or corrupt"):
        engine.load_model(path)
    empty = tmp_path / "empty.safetensors"
    empty.touch()
    with pytest.raises(engine.ModelFileError, match="empty.safetensors: the file is empty"):
        engine.load_model(empty)
    with pytest.raises(engine.ModelFileError, match="absent.safetensors: no such file"):
        engine.load_model(tmp_path / "absent.safetensors")


def test_a_plain_timm_file_named_like_a_model_says_what_it_is(tmp_path):
    import timm
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file(timm.create_model("test_resnet").state_dict(), str(path))
    with pytest.raises(engine.ModelFileError, match="model.safetensors: a safetensors file without SegAssist "
                                                    "metadata; .*backbone weights.*pretrained=path"):
        engine.load_model(path)


def test_pytorch_checkpoints_are_read_only_as_weights_and_refused(saved, tmp_path):
    import pickle

    state = engine.load_model(saved).model.state_dict()
    ckpt = tmp_path / "seg.pth"
    torch.save({"state_dict": {f"decode_head.{k}": v for k, v in state.items()}, "meta": {}}, ckpt)
    with pytest.raises(engine.ModelFileError, match="seg.pth: a PyTorch checkpoint, not a SegAssist model file; "
                                                    ".*segmentation checkpoint.*import_mmseg"):
        engine.load_model(ckpt)

    class Payload:
        def __reduce__(self):
            return (open, (str(tmp_path / "created-by-pickle.txt"), "w"))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"state_dict": {"w": Payload()}}))
    with pytest.raises(engine.ModelFileError, match="evil.pt: a PyTorch checkpoint that cannot be used: refused"):
        engine.load_model(evil)
    assert not (tmp_path / "created-by-pickle.txt").exists()
    disguised = tmp_path / "evil.safetensors"  # the content decides, not the name
    disguised.write_bytes(evil.read_bytes())
    with pytest.raises(engine.ModelFileError, match="evil.safetensors: .*refused"):
        engine.load_model(disguised)
    assert not (tmp_path / "created-by-pickle.txt").exists()


def test_a_failed_save_leaves_the_old_file_and_no_temporary(saved, tmp_path):
    before = saved.read_bytes()
    with pytest.raises(ValueError, match="m.safetensors: metadata must be JSON"):
        engine.save_model(saved, tiny_model("deeplabv3plus"), classes=["a", "b", "c"], crop_size={1, 2})
    with pytest.raises(ValueError, match="m.safetensors: 2 class names for a model with 3 outputs"):
        engine.save_model(saved, tiny_model("deeplabv3plus"), classes=["a", "b"])
    assert saved.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


@pytest.mark.parametrize("name", ["deeplabv3plus", "segmenter_mask"])  # a conv classifier; class embeddings
def test_class_count_disagreeing_with_the_weights_is_named_for_any_head(name, tmp_path):
    path = engine.save_model(tmp_path / "m.safetensors", tiny_model(name, num_classes=3), classes=["a", "b", "c"])

    def edit(doc):
        doc["config"]["num_classes"] = 5
        doc["classes"] += ["d", "e"]

    wrong = _rewrite(path, tmp_path / "k.safetensors", edit)
    with pytest.raises(engine.ModelFileError, match="k.safetensors: the metadata names 5 classes but the weights "
                                                    "have 3"):
        engine.load_model(wrong)
