"""Reading whole PyTorch checkpoints (weights and their metadata) without running pickled code.

`torch.load(weights_only=True)` comes first. Training checkpoints often carry side entries it refuses
(numpy scalars, logging buffers of the training framework); for those a restricted unpickler takes over.
It calls nothing but torch's own tensor rebuilders and a few plain constructors, turns the classes of a
small list of known data packages into inert stand-ins (never imported, never called), and refuses any
other global outright, so a pickle that would open a file or start a process fails before doing so.
"""

from __future__ import annotations

import codecs
import collections
import pickle
import types
import zipfile
from pathlib import Path

import torch
import torch._utils

# Packages whose pickled objects become inert stand-ins: training frameworks' side entries
# (logging buffers, numpy scalars and arrays, config dicts). Their code is never imported.
STAND_IN_PACKAGES = ("numpy", "mmengine", "mmcv", "mmseg")

# The only globals the restricted unpickler hands out for real.
_ALLOWED = {
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): codecs.encode,  # how protocol 2 pickles bytes
}


class CheckpointReadError(ValueError):
    """A checkpoint that cannot be read safely; the message names the file and the problem."""


class StandIn:
    """An inert object in place of one whose class lives in a stand-in package."""

    origin = ""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    # Pickled dict and list subclasses fill themselves through these.
    def __setitem__(self, key, value):
        pass

    def append(self, value):
        pass

    def extend(self, values):
        pass

    def __repr__(self) -> str:
        return f"<stand-in for {self.origin}>"


class _Refused(pickle.UnpicklingError):
    """The pickle names a global that the restricted unpickler does not hand out."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        found = _ALLOWED.get((module, name))
        if found is not None:
            return found
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module.split(".")[0] in STAND_IN_PACKAGES:
            return type(name, (StandIn,), {"origin": f"{module}.{name}"})
        raise _Refused(f"the pickle asks for {module}.{name}, which could run code")


def _restricted_load(file, **kwargs):
    return _RestrictedUnpickler(file, **kwargs).load()


# torch.load takes a module offering `Unpickler` and `load`.
_restricted_pickle = types.ModuleType("segassist_restricted_pickle")
_restricted_pickle.Unpickler = _RestrictedUnpickler
_restricted_pickle.load = _restricted_load


def read_checkpoint(path: str | Path) -> object:
    """The whole content of a `.pth`/`.pt`/`.ckpt` file, tensors on the CPU, without running pickled code.

    Objects of the stand-in packages come back as `StandIn` instances; any other non-plain object makes
    the read fail with `CheckpointReadError`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointReadError(f"{path}: no such file")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # side entries beyond plain data: try the restricted unpickler
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointReadError(f"{path}: not a readable PyTorch checkpoint ({_first_line(exc)})") from exc
    try:
        return torch.load(str(path), map_location="cpu", weights_only=False, pickle_module=_restricted_pickle)
    except _Refused as exc:
        raise CheckpointReadError(
            f"{path}: refused to load: {_first_line(exc)}; only tensors and plain data are read"
        ) from exc
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, TypeError,
            AttributeError, IndexError, KeyError) as exc:
        raise CheckpointReadError(f"{path}: not a readable PyTorch checkpoint ({_first_line(exc)})") from exc


MAX_DEPTH = 64  # containers nested deeper than this are refused (a pickle can nest without limit)


def plain(obj: object, _depth: int = 0, _memo: dict | None = None) -> object:
    """`obj` with stand-ins replaced by None and containers turned into dicts, lists and tuples.

    Shared references are converted once (a pickle of 40 levels that each refer twice to the level
    below is 40 objects, not 2**40); nesting deeper than `MAX_DEPTH` raises `CheckpointReadError`."""
    memo = {} if _memo is None else _memo
    if isinstance(obj, StandIn):
        return None
    if not isinstance(obj, dict | list | tuple):
        return obj
    if id(obj) in memo:
        return memo[id(obj)][1]
    if _depth > MAX_DEPTH:
        raise CheckpointReadError(f"the checkpoint's metadata is nested more than {MAX_DEPTH} levels deep")
    if isinstance(obj, dict):
        out: object = {k: plain(v, _depth + 1, memo) for k, v in obj.items()}
    else:
        items = [plain(v, _depth + 1, memo) for v in obj]
        out = tuple(items) if type(obj) is tuple else items
    memo[id(obj)] = (obj, out)  # the original is kept alive so that its id is not reused meanwhile
    return out


def _first_line(exc: BaseException) -> str:
    text = [line for line in str(exc).strip().splitlines() if line.strip()]
    return text[0] if text else type(exc).__name__
