"""Backbone weights from local files, never from the network."""

import pickle

import pytest
import timm
import torch
from safetensors.torch import save_file

import engine


def classifier_weights(name: str) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False).state_dict()


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_local_timm_file_fills_the_backbone(tmp_path, suffix):
    state = classifier_weights("test_resnet")
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state}, path)
    model = engine.create_model("deeplabv3plus", 3, backbone="test_resnet", pretrained=str(path))
    for key, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, state[key], msg=key)
    assert "pretrained" not in model.config


def test_weights_for_another_backbone_are_refused_with_the_file_named(tmp_path):
    path = tmp_path / "r18.safetensors"
    save_file(classifier_weights("resnet18"), str(path))
    with pytest.raises(ValueError, match=r"r18.safetensors: does not fit backbone.*(missing|wrong shape)"):
        engine.create_model("ccnet", 3, backbone="test_resnet", pretrained=str(path))


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    victim = tmp_path / "created-by-pickle.txt"
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"weight": _Payload(str(victim))}))
    with pytest.raises(ValueError, match="evil.pth: refused to load"):
        engine.create_model("encnet", 3, backbone="test_resnet", pretrained=str(path))
    assert not victim.exists()
