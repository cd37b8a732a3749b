"""A private Hugging Face hub cache for tests: timm's weights placed where timm's loader looks, no network.

The layout is the hub cache's own (`models--<org>--<name>/blobs`, `refs/main`, `snapshots/<commit>/<file>` as a
link to the blob); the repository name comes from timm's pretrained config, not from SegAssist's code.
"""

from __future__ import annotations

import http.server
import os
import threading
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save, save_file

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


class FakeHub:
    """A stand-in for the hub on 127.0.0.1: answers the client's HEAD and GET for one file. With `hold`
    set, a GET sends half the file and waits for `release` before the rest."""

    def __init__(self, repo_id: str, filename: str, payload: bytes):
        self.repo_id, self.filename, self.payload = repo_id, filename, payload
        self.hold, self.release, self.half_sent = False, threading.Event(), threading.Event()
        self.gets = 0
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _headers(self):
                if self.path != f"/{hub.repo_id}/resolve/main/{hub.filename}":
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return False
                self.send_response(200)
                self.send_header("X-Repo-Commit", "1" * 40)
                self.send_header("ETag", '"etag-of-the-file"')
                self.send_header("Content-Length", str(len(hub.payload)))
                self.end_headers()
                return True

            def do_HEAD(self):
                self._headers()

            def do_GET(self):
                if not self._headers():
                    return
                hub.gets += 1
                half = len(hub.payload) // 2 if hub.hold else 0
                self.wfile.write(hub.payload[:half])
                self.wfile.flush()
                hub.half_sent.set()
                if hub.hold:
                    hub.release.wait(10)
                self.wfile.write(hub.payload[half:])

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def online_hub(hub_cache, monkeypatch):
    """A stand-in hub on 127.0.0.1 serving timm's test_resnet weights (random ones) to an empty cache;
    yields (hub, state). The hub client's offline switch is off."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    state = random_weights("test_resnet", seed=4)
    repo_id, filename = hub_repo("test_resnet")
    hub = FakeHub(repo_id, filename, save(state))
    yield hub, state
    hub.close()


def point_hub_at(monkeypatch, url: str) -> None:
    """What `HF_ENDPOINT=url` does when set before `huggingface_hub` is imported."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
