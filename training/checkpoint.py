"""Resumable checkpoints: model, optimiser, schedule position, random states and progress, in one file."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from engine.atomic import atomic_path

CHECKPOINT_NAME = "last.pt"
FORMAT = "segassist-checkpoint"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message says why."""


def rng_state() -> dict:
    """This process's random states (torch CPU and CUDA, numpy, Python), as plain tensors and numbers."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    random.setstate(_as_tuple(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(folder: Path, payload: dict) -> Path:
    """Write `payload` as `folder/last.pt`, atomically (the previous checkpoint stays until the new one is
    complete)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT_NAME
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)
    return path


def load_checkpoint(folder: Path) -> dict:
    """The checkpoint in `folder`, read without unpickling code."""
    path = folder / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from (checkpoints are written every "
                              f"checkpoint_interval iterations beside the output model)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a SegAssist training checkpoint")
    return payload


def check_fingerprint(path: Path, saved: dict, current: dict) -> None:
    """`CheckpointError` listing what differs between the checkpoint's run and this one."""
    diffs = [f"{k}: {saved.get(k)!r} then, {current.get(k)!r} now" for k in sorted(set(saved) | set(current))
             if saved.get(k) != current.get(k)]
    if diffs:
        raise CheckpointError(f"{path}: the checkpoint belongs to a different run; resume it with the same "
                              f"settings and data ({'; '.join(diffs)})")


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list | tuple) else value
