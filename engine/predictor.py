"""Predicting labels for whole images: pre-processing, sliding windows, test-time augmentation, devices."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.cancel import Cancelled
from engine.classes import SegClass, as_classes
from engine.fusion import fold_batch_norms
from engine.images import read_image
from engine.model_file import LoadedModel, load_model
from engine.models.base import SegModel
from engine.onnx_backend import OnnxRunner, onnx_cuda_available
from engine.precision import autocast, resolve_device, resolve_precision
from engine.preprocessing import preprocess
from engine.tiling import BandAccumulator, chunk_rows, tile_grid, tile_weights

# The scales of the papers' multi-scale testing.
DEFAULT_TTA_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
# Test-time augmentation by the mirror image alone (with `tta=True`): the app's proposals, its training's
# validation and the simulated annotator all mean this by "flip".
FLIP_ONLY = {"tta_scales": (1.0,), "tta_flip": True}
# With tile=None, images up to this many pixels go through the network whole; larger ones are tiled.
AUTO_TILE_PIXELS = 2048 * 2048
# The tile size for such images when the model file names no training crop size.
AUTO_TILE = 1024
# The smallest height and width a network is given (smaller images and tiles are padded).
MIN_SIDE = 32


@dataclass
class Prediction:
    """What a predictor says about one image, and how it came to say it."""

    labels: np.ndarray  # uint8 [H, W] (uint16 with more than 255 classes): the most probable class
    confidence: np.ndarray  # float32 [H, W]: that class's probability
    entropy: np.ndarray  # float32 [H, W]: entropy (natural log) of the class probabilities
    probs: np.ndarray | None = None  # float32 [K, H, W], on request
    device: str = "cpu"
    precision: str = "fp32"
    backend: str = "torch"
    tiles: int = 0  # windows (the network runs once per window and test-time augmentation)
    seconds: float = 0.0


class Predictor:
    """Labels, confidence and entropy for images of any size, with a torch model or an ONNX file.

    `model_or_path`: a `SegModel` (class names `class0`..., its own normalisation), a `LoadedModel`, a
    `.safetensors` model file or an `.onnx` file exported by SegAssist. `backend` ("torch" or "onnx") is
    inferred from that unless given; "onnx" with a torch model exports it to a temporary file first.
    `device`: "auto" (CUDA when present, else the CPU), "cpu", "cuda", "cuda:N". `precision`: "auto"
    (bf16 on CPUs with native bf16 and on GPUs that have it, fp16 on other GPUs, fp32 otherwise),
    "fp32", "bf16", "fp16"; the ONNX backend runs fp32.
    `tile`: window size (an int or (h, w)) for sliding-window prediction with `overlap` (a fraction of the
    window) and smoothly blended seams; None runs images whole up to `AUTO_TILE_PIXELS` and tiles larger
    ones. Images smaller than a window are padded by reflection. `tta`: average the softmax over
    `tta_scales` and, with `tta_flip`, horizontal flips. `batch_size` windows go through the network at once.
    A torch model is put in eval mode on the device (in channels_last memory format unless
    `channels_last=False`; faster for convolutions on this project's CPUs). With `fuse`, the network that
    runs is a copy of it (sharing its tensors) with batch norms folded into the convolutions before them,
    used only when it gives the model's logits (`fused` says whether it is). A predictor may be called from
    any thread; calls on one predictor run one at a time.
    """

    def __init__(self, model_or_path: SegModel | LoadedModel | str | Path, device: str | torch.device = "auto",
                 backend: str | None = None, tile: int | tuple[int, int] | None = None, overlap: float = 1 / 3,
                 tta: bool = False, precision: str = "auto", *, tta_scales: Sequence[float] = DEFAULT_TTA_SCALES,
                 tta_flip: bool = True, batch_size: int | None = None, channels_last: bool = True, fuse: bool = True):
        self.tile = _check_tile(tile)
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap must be a fraction in [0, 1), got {overlap!r}")
        self.overlap = float(overlap)
        self.tta = bool(tta)
        self.tta_scales = tuple(float(s) for s in tta_scales)
        if not self.tta_scales or not all(s > 0 for s in self.tta_scales):
            raise ValueError(f"tta_scales must be positive numbers, got {tta_scales!r}")
        self.tta_flip = bool(tta_flip)
        is_onnx_file = isinstance(model_or_path, str | Path) and Path(model_or_path).suffix.lower() == ".onnx"
        backend = backend or ("onnx" if is_onnx_file else "torch")
        if backend not in ("torch", "onnx"):
            raise ValueError(f"unknown backend {backend!r}; use 'torch' or 'onnx'")
        if backend == "torch" and is_onnx_file:
            raise ValueError(f"{model_or_path}: an ONNX file runs with backend='onnx'")
        self.backend = backend
        self.model: SegModel | None = None
        self._lock = threading.Lock()
        if backend == "onnx":
            self._init_onnx(model_or_path, device, precision)
        else:
            self._init_torch(model_or_path, device, precision, channels_last, fuse)
        self.num_classes = len(self.classes)
        self.batch_size = batch_size or (8 if self.device.type == "cuda" else 2)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        mean, std = self.normalization
        self._mean = torch.tensor(mean, dtype=torch.float32, device=self.device)
        self._std = torch.tensor(std, dtype=torch.float32, device=self.device)

    def _init_torch(self, source, device, precision: str, channels_last: bool, fuse: bool) -> None:
        loaded = load_model(source) if isinstance(source, str | Path) else source
        if isinstance(loaded, LoadedModel):
            model, self.classes, self.meta = loaded.model, loaded.classes, dict(loaded.meta)
            self.normalization = loaded.normalization
        elif isinstance(loaded, SegModel):
            model, self.meta = loaded, {}
            self.classes = as_classes([f"class{i}" for i in range(loaded.num_classes)])
            self.normalization = tuple(list(v) for v in loaded.normalization)
        else:
            raise TypeError(f"expected a SegModel, a LoadedModel or a model file path, got {type(source).__name__}")
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.channels_last = channels_last
        model.eval().to(self.device)
        self.model = model
        # The network that runs: the model, or a copy with its batch norms folded into the convolutions.
        self._net = _folded(model, self.device) if fuse else None
        self.fused = self._net is not None
        self._net = self._net or model
        if channels_last:
            self._net.to(memory_format=torch.channels_last)
        self._logits = self._torch_logits

    def _init_onnx(self, source, device, precision: str) -> None:
        if precision not in ("auto", "fp32"):
            raise ValueError(f"the ONNX backend runs in fp32; precision {precision!r} needs backend='torch'")
        self.precision = "fp32"
        self.channels_last = self.fused = False
        if isinstance(device, str) and device == "auto":
            self.device = resolve_device("cuda" if torch.cuda.is_available() and onnx_cuda_available() else "cpu")
        else:
            self.device = resolve_device(device)
        if isinstance(source, str | Path) and Path(source).suffix.lower() == ".onnx":
            runner = OnnxRunner(source, self.device)
        else:
            from engine.onnx_export import export_onnx

            source = load_model(source) if isinstance(source, str | Path) else source
            with tempfile.TemporaryDirectory(prefix="segassist-onnx-") as folder:
                path = export_onnx(source, Path(folder) / "model.onnx")
                runner = OnnxRunner(path, self.device)
        self.classes: list[SegClass] = runner.classes
        self.normalization = runner.normalization
        self.meta = runner.meta
        self._runner = runner
        self._logits = runner

    def _torch_logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.precision):
            return self._net(x)

    def predict(self, image: np.ndarray | str | Path, *, return_probs: bool = False,
                should_stop: Callable[[], bool] | None = None) -> Prediction:
        """Predict one image: uint8 RGB `[H, W, 3]` (grey `[H, W]` and RGBA are accepted) or a path.

        `should_stop` is checked between batches of windows; when it returns True, `Cancelled` is raised.
        """
        if isinstance(image, str | Path):
            image = read_image(image)
        image = _check_image(image)
        with self._lock, torch.inference_mode():
            start = time.perf_counter()
            out = _Outputs(*image.shape[:2], self.num_classes, return_probs)
            tiles = self._predict_into(image, out, should_stop)
            seconds = time.perf_counter() - start
        return Prediction(out.labels, out.confidence, out.entropy, out.probs, device=str(self.device),
                          precision=self.precision, backend=self.backend, tiles=tiles, seconds=seconds)

    def window(self, height: int, width: int) -> tuple[int, int]:
        """The window size used for a `height` x `width` image."""
        tile = self.tile
        if tile is None and height * width > AUTO_TILE_PIXELS:
            crop = self.meta.get("crop_size")
            side = max(crop) if isinstance(crop, list | tuple) and crop else crop if isinstance(crop, int) else 0
            tile = (max(side, AUTO_TILE),) * 2
        if tile is None:
            return max(height, MIN_SIDE), max(width, MIN_SIDE)
        return tile

    def _predict_into(self, image: np.ndarray, out: _Outputs, should_stop) -> int:
        height, width = image.shape[:2]
        th, tw = self.window(height, width)
        image = _pad_to(image, th, tw)
        ph, pw = image.shape[:2]
        grid = tile_grid(ph, pw, th, tw, self.overlap)
        single = len(grid) == 1
        accumulator = None if single else BandAccumulator(self.num_classes, pw, self.device, out.write)
        weights: dict[tuple[bool, ...], torch.Tensor] = {}
        for start in range(0, len(grid), self.batch_size):
            if should_stop is not None and should_stop():
                raise Cancelled("prediction cancelled")
            batch = grid[start:start + self.batch_size]
            crops = np.stack([image[y:y + th, x:x + tw] for y, x in batch])
            probs = self._probs(preprocess(torch.from_numpy(crops).to(self.device, non_blocking=True), self._mean,
                                           self._std))
            if single:
                out.write(probs[0], 0)
                continue
            for p, (y, x0) in zip(probs, batch, strict=True):
                key = (y > 0, y + th < ph, x0 > 0, x0 + tw < pw)
                if key not in weights:
                    weights[key] = torch.from_numpy(tile_weights(y, x0, th, tw, ph, pw, self.overlap)).to(self.device)
                accumulator.add(p, weights[key], y, x0)
            accumulator.release(grid[start + self.batch_size][0] if start + self.batch_size < len(grid) else ph)
        return len(grid)

    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities `[B, h, w, K]` (float32, classes last) for a normalised batch, averaged over
        the test-time augmentations."""
        if not self.tta:
            return _softmax_classes_last(self._logits(x))
        size = x.shape[-2:]
        total = None
        for scale in self.tta_scales:
            scaled = x
            if scale != 1:
                scaled = F.interpolate(x, size=[max(MIN_SIDE, round(s * scale)) for s in size], mode="bilinear",
                                       align_corners=False)
            for flip in (False, True) if self.tta_flip else (False,):
                logits = self._logits(scaled.flip(-1) if flip else scaled).float()
                if flip:
                    logits = logits.flip(-1)
                if scale != 1:
                    logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
                probs = _softmax_classes_last(logits)
                total = probs if total is None else total.add_(probs)
        return total / (len(self.tta_scales) * (2 if self.tta_flip else 1))


class _Outputs:
    """The per-pixel results, filled band by band from class probabilities."""

    def __init__(self, height: int, width: int, num_classes: int, with_probs: bool):
        self.height, self.width = height, width
        self.labels = np.zeros((height, width), np.uint8 if num_classes <= 255 else np.uint16)
        self.confidence = np.zeros((height, width), np.float32)
        self.entropy = np.zeros((height, width), np.float32)
        self.probs = np.zeros((num_classes, height, width), np.float32) if with_probs else None

    def write(self, probs: torch.Tensor, top: int) -> None:
        """Take probabilities `[rows, w, K]` whose first row is image row `top` (padding is cut off)."""
        rows = min(probs.shape[0], self.height - top)
        chunk = chunk_rows(self.width, probs.shape[-1])
        for a in range(0, rows, chunk):  # in chunks: the entropy's temporaries stay small
            b = min(rows, a + chunk)
            p = probs[a:b, : self.width]
            confidence, labels = p.max(dim=-1)
            self.labels[top + a:top + b] = labels.cpu().numpy()
            self.confidence[top + a:top + b] = confidence.cpu().numpy()
            self.entropy[top + a:top + b] = _entropy(p).cpu().numpy()
            if self.probs is not None:
                self.probs[:, top + a:top + b] = p.permute(2, 0, 1).cpu().numpy()


def _folded(model: SegModel, device: torch.device) -> SegModel | None:
    probe = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)).to(device)
    try:
        return fold_batch_norms(model, probe)
    except Exception:  # folding is an optimisation: a model it cannot probe runs as it is
        return None


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy (natural log) over the last dimension; 0 log 0 counts as 0."""
    logs = probs.clamp_min(torch.finfo(probs.dtype).tiny).log_()
    # A contraction over the classes: about half the time of `special.entr(probs).sum(-1)` here.
    return -torch.einsum("...k,...k->...", probs, logs)


def _softmax_classes_last(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the classes of logits `[B, K, h, w]`, in float32, as `[B, h, w, K]`.

    The reduction runs over whichever layout the logits have in memory (channels_last networks give
    classes-last logits), so no layout copy is made and the reduced dimension is the contiguous one.
    """
    logits = logits.float()
    if logits.is_contiguous(memory_format=torch.channels_last):
        return torch.softmax(logits.permute(0, 2, 3, 1), dim=-1)
    return torch.softmax(logits, dim=1).permute(0, 2, 3, 1)


def _check_tile(tile) -> tuple[int, int] | None:
    if tile is None:
        return None
    sizes = (tile, tile) if isinstance(tile, int) else tuple(tile)
    if len(sizes) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= MIN_SIDE for s in sizes):
        raise ValueError(f"tile must be an int or (height, width) of at least {MIN_SIDE} pixels, got {tile!r}")
    return sizes


def _check_image(image) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB image [H, W, 3] (or a path), got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"expected a uint8 RGB image [H, W, 3] (or a path), got shape {arr.shape}")
    return arr


def _pad_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad by reflection at the bottom and right to at least `height` x `width`."""
    ph, pw = max(0, height - image.shape[0]), max(0, width - image.shape[1])
    if not ph and not pw:
        return image
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="reflect")
