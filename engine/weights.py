"""Reading weight files without executing pickled code."""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

# Containers that checkpoints commonly nest their weights in.
_NESTED_KEYS = ("state_dict", "model", "model_state", "module", "params")


class WeightsFileError(ValueError):
    """A weights file that cannot be read; the message names the file and the problem."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a `.safetensors`, `.pth`, `.pt` or `.bin` file, on the CPU.

    Pickled files go through `torch.load(weights_only=True)`: anything that is not plain tensors and
    containers is refused, never executed. Nested `state_dict`/`model` containers are unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsFileError(f"{path}: no such file")
    if path.suffix == ".safetensors" and not _looks_pickled(path):
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsFileError(f"{path}: not a readable safetensors file ({exc})") from exc
    try:
        with open(path, "rb") as f:  # a file object: torch.load decides by a path's suffix, not its content
            obj = torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsFileError(
            f"{path}: refused to load: the file holds pickled objects other than tensors, which could run "
            f"code ({_first_line(exc)})"
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise WeightsFileError(f"{path}: not a readable PyTorch weights file ({_first_line(exc)})") from exc
    return _unwrap(obj, path)


def file_origin(path: str | Path) -> str:
    """How a model file records backbone weights read from a local file: `file:<name>+sha256:<hex>`."""
    path = Path(path)
    return f"file:{path.name}+sha256:{file_sha256(path)}"


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _looks_pickled(path: Path) -> bool:
    """Whether the file starts like a PyTorch zip checkpoint or a raw pickle, whatever its name."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return head == b"PK" or head[:1] == b"\x80"


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    while isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        inner = next((obj[k] for k in _NESTED_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict):
        raise WeightsFileError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsFileError(f"{path}: holds no tensors")
    return tensors


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
