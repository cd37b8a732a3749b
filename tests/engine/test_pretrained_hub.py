"""ImageNet backbone weights through timm's hub cache: loaded offline from a file placed where timm looks,
a clear message offline without it, and a download (from a local stand-in for the hub) with progress and cancel.
(`python -m bench.limits` times the errors and the cancel.)"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save

import engine
from engine.pretrained import PretrainedUnavailable, cached_pretrained, download_pretrained
from tests.hub_cache import hub_environment, place_weights, random_weights

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("arch", "backbone"), [("deeplabv3plus", "test_resnet"), ("segmenter_linear", "test_vit")])
def test_imagenet_weights_load_from_timms_cache_offline(hub_cache, arch, backbone):
    state = random_weights(backbone)
    place_weights(hub_cache, backbone, state)
    # The layout is the one timm's own loader reads: plain timm finds the file, offline.
    plain = timm.create_model(backbone, pretrained=True)
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0, msg=key)

    model = engine.create_model(arch, 3, backbone=backbone, pretrained=True)
    own = model.backbone.state_dict()
    assert own
    for key, value in own.items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0, msg=key)
    tag = timm.models.get_pretrained_cfg(backbone).tag
    assert model.backbone_weights == f"timm:{backbone}@{tag}"
    assert "pretrained" not in model.config


def test_the_model_file_records_where_the_backbone_weights_came_from(hub_cache, tmp_path):
    place_weights(hub_cache, "test_resnet", random_weights("test_resnet"))
    local = tmp_path / "r.safetensors"
    local.write_bytes(save(random_weights("test_resnet", seed=2)))
    sources = {"random": False, "timm:test_resnet@r160_in1k": True, "file:r.safetensors+sha256:": str(local)}
    for expected, pretrained in sources.items():
        model = engine.create_model("deeplabv3plus", 2, backbone="test_resnet", pretrained=pretrained)
        path = engine.save_model(tmp_path / "m.safetensors", model, classes=["a", "b"])
        recorded = engine.read_model_metadata(path)["backbone_weights"]
        assert recorded.startswith(expected) and (recorded == expected or expected.startswith("file:"))
        loaded = engine.load_model(path)
        assert loaded.meta["backbone_weights"] == recorded == loaded.model.backbone_weights
    import hashlib

    assert recorded == f"file:r.safetensors+sha256:{hashlib.sha256(local.read_bytes()).hexdigest()}"


def test_offline_without_the_file_says_so(hub_cache):
    with pytest.raises(PretrainedUnavailable, match=r"ImageNet weights of test_resnet are not on this computer.*"
                                                    r"HF_HUB_OFFLINE.*local weights file"):
        engine.create_model("deeplabv3plus", 3, backbone="test_resnet", pretrained=True)


def test_an_unreachable_hub_is_reported_without_retrying(hub_cache, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(PretrainedUnavailable, match=r"127\.0\.0\.1 cannot be reached.*offline.*local weights file"):
        download_pretrained("test_resnet", endpoint=f"http://127.0.0.1:{_closed_port()}")


def test_a_backbone_without_imagenet_weights_is_named():
    with pytest.raises(PretrainedUnavailable, match="no downloadable ImageNet weights for backbone 'resnet18d_x'"):
        download_pretrained("resnet18d_x")


def test_download_reports_progress_and_lands_in_timms_cache(online_hub):
    hub, state = online_hub
    seen = []
    path = download_pretrained("test_resnet", endpoint=hub.url, progress=lambda done, total: seen.append((done, total)))
    assert path == cached_pretrained("test_resnet")
    assert seen[-1] == (len(hub.payload), len(hub.payload))
    model = engine.create_model("deeplabv3plus", 3, backbone="test_resnet", pretrained=True)  # from the cache
    for key, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0, msg=key)
    download_pretrained("test_resnet", endpoint=hub.url)
    assert hub.gets == 1  # cached: downloaded once


def test_cancel_stops_a_download_at_once_and_leaves_no_weights(online_hub):
    hub, state = online_hub
    hub.hold = True
    stop = threading.Event()
    threading.Thread(target=lambda: (hub.half_sent.wait(10), stop.set()), daemon=True).start()
    with pytest.raises(engine.Cancelled):  # while the server still holds the rest of the file (released below)
        download_pretrained("test_resnet", endpoint=hub.url, should_stop=stop.is_set)
    assert cached_pretrained("test_resnet") is None
    hub.hold = False
    hub.release.set()
    path = download_pretrained("test_resnet", endpoint=hub.url)  # a later try completes
    assert path.read_bytes() == hub.payload


def test_environment_variables_alone_point_timm_and_segassist_at_the_cache(tmp_path):
    """What a person sets (HF_HOME, HF_HUB_CACHE, TORCH_HOME, HF_HUB_OFFLINE), in a fresh process."""
    env = hub_environment(tmp_path)
    blob = place_weights(Path(env["HF_HUB_CACHE"]), "test_resnet", random_weights("test_resnet", seed=5))
    script = textwrap.dedent(f"""
        import torch, engine
        from safetensors.torch import load_file
        from engine.pretrained import PretrainedUnavailable
        state = load_file({str(blob)!r})
        model = engine.create_model("encnet", 3, backbone="test_resnet", pretrained=True)
        assert all(torch.equal(v, state[k]) for k, v in model.backbone.state_dict().items())
        print(model.backbone_weights)
        try:
            engine.create_model("encnet", 3, backbone="test_efficientnet", pretrained=True)
        except PretrainedUnavailable as exc:
            print("unavailable:", exc)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, **env, "OMP_NUM_THREADS": "1"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "timm:test_resnet@r160_in1k"
    assert lines[1].startswith("unavailable: The ImageNet weights of test_efficientnet are not on this computer")


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

