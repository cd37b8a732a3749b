"""Cached model proposals: labels, confidence and entropy of one image in one `.npz` file.

The three maps are stored as PNG-encoded 8-bit images (confidence scaled to 0-255, entropy to
0-255 of its stored maximum), so a 10000 x 10000 proposal takes megabytes, not hundreds of them.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.atomic import atomic_write_bytes

FORMAT_VERSION = 1


class PredictionFileError(ValueError):
    """A cached proposal that cannot be used; the message names the file and the problem."""


@dataclass
class CachedPrediction:
    labels: np.ndarray  # uint8 [H, W]
    confidence: np.ndarray | None  # float32 [H, W], quantised to 1/255
    entropy: np.ndarray | None  # float32 [H, W], quantised to 1/255 of its maximum
    mean_entropy: float | None
    model: str | None


def write_prediction(path: str | Path, labels: np.ndarray, confidence: np.ndarray | None = None,
                     entropy: np.ndarray | None = None, *, model: str | None = None) -> float | None:
    """Write a proposal atomically; returns the mean entropy (None without an entropy map)."""
    path = Path(path)
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"{path}: proposal labels must be uint8 [H, W], got {labels.dtype} {labels.shape}")
    arrays = {"version": np.array(FORMAT_VERSION), "labels": _png(labels)}
    if model is not None:
        arrays["model"] = np.array(model)
    if confidence is not None:
        conf = np.asarray(confidence, np.float32)
        arrays["confidence"] = _png(np.clip(np.rint(conf * 255), 0, 255).astype(np.uint8))
    mean_entropy = None
    if entropy is not None:
        ent = np.asarray(entropy, np.float32)
        mean_entropy = float(ent.mean(dtype=np.float64))
        top = max(float(ent.max()), 1e-6)
        arrays["entropy"] = _png(np.clip(np.rint(ent * (255 / top)), 0, 255).astype(np.uint8))
        arrays["entropy_max"] = np.array(top)
        arrays["mean_entropy"] = np.array(mean_entropy)
    for name, arr in (("confidence", confidence), ("entropy", entropy)):
        if arr is not None and np.shape(arr) != labels.shape:
            raise ValueError(f"{path}: {name} of shape {np.shape(arr)} for labels of shape {labels.shape}")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return mean_entropy


def project_labels(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """A model's labels as the project's: uint8, and classes the project does not have become 255
    (not shown, never accepted into the labels)."""
    out = labels.astype(np.uint8) if labels.dtype != np.uint8 else labels
    beyond = labels >= num_classes
    if beyond.any():
        out = out.copy() if out is labels else out
        out[beyond] = 255
    return out


def read_prediction(path: str | Path) -> CachedPrediction:
    """A proposal written by `write_prediction`; raises `PredictionFileError` naming the file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) > FORMAT_VERSION:
                raise PredictionFileError(f"{path}: written by a newer SegAssist (version {int(z['version'])})")
            labels = _unpng(path, z["labels"])
            confidence = _unpng(path, z["confidence"]).astype(np.float32) / 255 if "confidence" in z else None
            entropy = None
            if "entropy" in z:
                entropy = _unpng(path, z["entropy"]).astype(np.float32) * (float(z["entropy_max"]) / 255)
            mean_entropy = float(z["mean_entropy"]) if "mean_entropy" in z else None
            model = str(z["model"]) if "model" in z else None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        if isinstance(exc, PredictionFileError):
            raise
        raise PredictionFileError(f"{path}: not a readable cached proposal ({exc})") from exc
    for name, arr in (("confidence", confidence), ("entropy", entropy)):
        if arr is not None and arr.shape != labels.shape:
            raise PredictionFileError(f"{path}: {name} and labels differ in size")
    return CachedPrediction(labels, confidence, entropy, mean_entropy, model)


def _png(arr: np.ndarray) -> np.ndarray:
    ok, buf = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("cannot encode a map as PNG")
    return buf.reshape(-1)


def _unpng(path: Path, buf: np.ndarray) -> np.ndarray:
    arr = cv2.imdecode(np.asarray(buf, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.ndim != 2:
        raise PredictionFileError(f"{path}: a damaged map inside the cached proposal")
    return arr
