"""Cached model proposals: labels, confidence and entropy of one image in one `.npz` file.

The three maps are stored as PNG-encoded 8-bit images (confidence scaled to 0-255, entropy to
0-255 of its stored maximum), so a 10000 x 10000 proposal takes megabytes, not hundreds of them.
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.atomic import atomic_write_bytes
from engine.images import max_pixels
from engine.safe_files import max_file_bytes, read_npz

FORMAT_VERSION = 1

# How the app makes a proposal unless the person changes it in the Model panel: the mean of the image's and
# its mirror's prediction (flip test-time augmentation). Measured with `bench.pretrained_recipe` on
# camvid-mini (README, "Better proposals"): it lowers the effort of correcting the proposals by about a
# tenth for twice the inference time (0.11 -> 0.23 s per 480 x 360 image on one CPU thread).
PROPOSAL_OPTIONS = {"device": "auto", "backend": "torch", "precision": "auto", "tta": True}


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


def read_prediction(path: str | Path, shape: tuple[int, int] | None = None) -> CachedPrediction:
    """A proposal written by `write_prediction`; raises `PredictionFileError` naming the file for anything
    else (a FIFO, a deflate or PNG bomb, wrong types or sizes). With `shape` (the image's height, width),
    maps of another size are refused before they are decoded."""
    path = Path(path)
    try:
        z = read_npz(path, max_bytes=max_file_bytes(), names=_NAMES)
        version = _scalar(path, z, "version", "iu")
        if version is None or int(version) > FORMAT_VERSION:
            raise PredictionFileError(f"{path}: not a cached proposal of this SegAssist (version {version})")
        labels = _unpng(path, z.get("labels"), shape)
        shape = labels.shape
        confidence = _unpng(path, z["confidence"], shape).astype(np.float32) / 255 if "confidence" in z else None
        entropy = None
        if "entropy" in z:
            top = _scalar(path, z, "entropy_max", "f")
            if top is None or not math.isfinite(top) or top < 0:
                raise PredictionFileError(f"{path}: a bad entropy scale")
            entropy = _unpng(path, z["entropy"], shape).astype(np.float32) * (float(top) / 255)
        mean_entropy = _scalar(path, z, "mean_entropy", "f")
        if mean_entropy is not None and not math.isfinite(mean_entropy):
            raise PredictionFileError(f"{path}: a mean entropy that is not a number")
        model = z.get("model")
        if model is not None and (model.shape != () or model.dtype.kind != "U"):
            raise PredictionFileError(f"{path}: the model name is not text")
        model = None if model is None else str(model)
    except PredictionFileError:
        raise
    except MemoryError as exc:
        raise PredictionFileError(f"{path}: not enough memory to read this cached proposal") from exc
    except (OSError, ValueError) as exc:
        raise PredictionFileError(f"{path}: not a readable cached proposal ({exc})") from exc
    return CachedPrediction(labels, confidence, entropy, mean_entropy, model)


_NAMES = {"version", "labels", "model", "confidence", "entropy", "entropy_max", "mean_entropy"}


def _scalar(path: Path, z: dict, name: str, kinds: str) -> float | int | None:
    arr = z.get(name)
    if arr is None:
        return None
    if arr.shape != () or arr.dtype.kind not in kinds:
        raise PredictionFileError(f"{path}: {name} must be a single number")
    return arr.item()


def _png(arr: np.ndarray) -> np.ndarray:
    ok, buf = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("cannot encode a map as PNG")
    return buf.reshape(-1)


def _unpng(path: Path, buf: np.ndarray | None, shape: tuple[int, int] | None) -> np.ndarray:
    """An 8-bit grey PNG held in the archive; its size read from the header and checked before decoding."""
    if buf is None or buf.dtype != np.uint8 or buf.ndim != 1:
        raise PredictionFileError(f"{path}: a map inside the cached proposal is missing or not PNG bytes")
    head = buf[:33].tobytes()
    if len(head) < 33 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise PredictionFileError(f"{path}: a damaged map inside the cached proposal")
    w, h = struct.unpack(">II", head[16:24])
    if head[24] != 8 or head[25] != 0:  # bit depth 8, colour type grey: what `_png` writes
        raise PredictionFileError(f"{path}: a map inside the cached proposal is not 8-bit grey")
    if (shape is not None and (h, w) != tuple(shape)) or h * w > max_pixels() or not h or not w:
        raise PredictionFileError(f"{path}: a map of {w}x{h} pixels inside the cached proposal"
                                  + (f" for an image of {shape[1]}x{shape[0]}" if shape is not None else ""))
    try:
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise PredictionFileError(f"{path}: a damaged map inside the cached proposal ({exc})") from exc
    if arr is None or arr.ndim != 2 or arr.dtype != np.uint8 or arr.shape != (h, w):
        raise PredictionFileError(f"{path}: a damaged map inside the cached proposal")
    return arr
