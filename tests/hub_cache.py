"""A private Hugging Face hub cache for tests: timm's weights placed where timm's loader looks, no network.

The layout is the hub cache's own (`models--<org>--<name>/blobs`, `refs/main`, `snapshots/<commit>/<file>` as a
link to the blob); the repository name comes from timm's pretrained config, not from SegAssist's code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_repo(name: str) -> tuple[str, str]:
    """(repo id, file name) of timm's default pretrained weights for `name`, per timm's config."""
    cfg = timm.models.get_pretrained_cfg(name)
    return cfg.hf_hub_id, cfg.hf_hub_filename or "model.safetensors"


def random_weights(name: str, seed: int = 1) -> dict[str, torch.Tensor]:
    """A full timm model's state (classifier included), as a weights file on the hub holds it."""
    torch.manual_seed(seed)
    return {k: v.contiguous() for k, v in timm.create_model(name, pretrained=False).state_dict().items()}


def place_weights(cache: Path, name: str, state: dict[str, torch.Tensor]) -> Path:
    """Write `state` as timm's weights of `name` into the hub cache folder `cache`; returns the blob."""
    repo_id, filename = hub_repo(name)
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    blob = repo / "blobs" / f"etag-{name}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(blob))
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(blob, snapshot), snapshot / filename)
    return blob


def hub_environment(root: Path, *, offline: bool = True) -> dict[str, str]:
    """The environment variables that point timm, torch and the hub client at folders under `root`."""
    env = {"HF_HOME": str(root / "hf"), "HF_HUB_CACHE": str(root / "hf" / "hub"), "TORCH_HOME": str(root / "torch"),
           "HF_HUB_DISABLE_TELEMETRY": "1"}
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty, offline hub cache for this test; returns its folder.

    The environment variables are set for child processes; `huggingface_hub` read them when it was imported,
    so its module constants are set to the same values here.
    """
    from huggingface_hub import constants

    env = hub_environment(tmp_path / "cache")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(constants, "HF_HOME", env["HF_HOME"])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", env["HF_HUB_CACHE"])
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    cache = Path(env["HF_HUB_CACHE"])
    cache.mkdir(parents=True)
    return cache
