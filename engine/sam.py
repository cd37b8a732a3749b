"""Segment Anything 2 for click and box segmentation: load a local checkpoint, embed images, decode prompts.

Uses the `sam2` package (pinned 1.1.0, installed without its CUDA extension, which only the video
post-processing needs) and its shipped configs. Nothing is downloaded: the person points at an
official checkpoint file (`sam2.1_hiera_tiny.pt` .. `sam2.1_hiera_large.pt`, or the SAM 2.0 names),
loaded with `torch.load(weights_only=True)`. The image embedding (slow, once per image) is kept as
float16 numpy arrays, so it can be cached on disk (`EmbeddingCache`) and decoded on any thread.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.atomic import atomic_write_bytes
from engine.safe_files import read_npz

log = logging.getLogger(__name__)

# Official checkpoint file names -> the package's config for them.
CONFIGS = {
    "sam2.1_hiera_tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_large": "configs/sam2.1/sam2.1_hiera_l.yaml",
    "sam2_hiera_tiny": "configs/sam2/sam2_hiera_t.yaml",
    "sam2_hiera_small": "configs/sam2/sam2_hiera_s.yaml",
    "sam2_hiera_base_plus": "configs/sam2/sam2_hiera_b+.yaml",
    "sam2_hiera_large": "configs/sam2/sam2_hiera_l.yaml",
}
MASK_LOGIT = 8.0  # the logit a binary starting mask is given (SAM's own masks clamp at +-32)


class SamError(RuntimeError):
    """SAM cannot be used: the package is missing or a checkpoint cannot be loaded (the message says why)."""


def sam_available() -> bool:
    """Whether the `sam2` package can be imported."""
    try:
        import sam2  # noqa: F401
    except ImportError:
        return False
    return True


def config_for(checkpoint: str | Path) -> str:
    """The shipped config for an official checkpoint file name; ValueError naming the known names."""
    stem = Path(checkpoint).stem
    for name in sorted(CONFIGS, key=len, reverse=True):
        if stem.startswith(name):
            return CONFIGS[name]
    raise ValueError(f"{checkpoint}: not an official SAM 2 checkpoint name ({', '.join(f'{n}.pt' for n in CONFIGS)});"
                     " rename it or give the config")


def file_digest(path: Path) -> str:
    """A content hash of a file (BLAKE2b, 16 bytes)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def image_digest(image: np.ndarray) -> str:
    """A content hash of an image array (its pixels and shape)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((image.shape, str(image.dtype))).encode())
    h.update(np.ascontiguousarray(image).data)
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class Embedding:
    """One image's SAM features: the image embedding and the two high-resolution feature maps."""

    image_embed: np.ndarray  # float16 [C, h, w]
    high_res: tuple[np.ndarray, ...]  # float16 [C_i, h_i, w_i], finest first
    image_hw: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return self.image_embed.nbytes + sum(f.nbytes for f in self.high_res)


@dataclass(frozen=True, eq=False)
class SamMask:
    """A decoded mask at image size, SAM's predicted quality, and the low-resolution logits to refine from."""

    mask: np.ndarray  # bool [H, W]
    score: float
    logits: np.ndarray  # float32 [1, h, w]


class SamModel:
    """A SAM 2 model on one device. `embed` is the slow part (once per image); `segment` is per prompt."""

    def __init__(self, checkpoint: str | Path, config: str | None = None, *, device: str = "cpu",
                 overrides: Sequence[str] = ()):
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise SamError(f"{checkpoint}: no such SAM 2 checkpoint file")
        try:
            import torch
            from sam2.build_sam import build_sam2
            from sam2.sam2_image_predictor import SAM2ImagePredictor
        except ImportError as exc:
            raise SamError(f"the sam2 package is not installed ({exc}); install it with "
                           "SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2==1.1.0") from exc
        try:
            config = config or config_for(checkpoint)
        except ValueError as exc:
            raise SamError(str(exc)) from exc
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or "model" not in state:
                raise SamError(f"{checkpoint}: not a SAM 2 checkpoint (no 'model' entry)")
            model = build_sam2(config, None, device="cpu", hydra_overrides_extra=list(overrides))
            missing, unexpected = model.load_state_dict(state["model"], strict=False)
        except SamError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken file or a config that does not fit
            raise SamError(f"{checkpoint}: cannot be loaded as {Path(config).stem} ({exc})") from exc
        if missing or unexpected:
            raise SamError(f"{checkpoint}: does not fit {Path(config).stem}: {len(missing)} missing and "
                           f"{len(unexpected)} unexpected weights (first: {(list(missing) + list(unexpected))[0]})")
        self.torch = torch
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        # The prompt encoder's dense positional encoding depends on its weights alone, yet the predictor asks
        # for it on every click; computed once here it stops costing each click a 64x64 encoding.
        with torch.inference_mode():
            dense_pe = self.model.sam_prompt_encoder.get_dense_pe()
        self.model.sam_prompt_encoder.get_dense_pe = lambda: dense_pe
        self.config = config
        self.checkpoint = checkpoint
        self.key = hashlib.blake2b(f"{file_digest(checkpoint)}|{config}|{sorted(overrides)}".encode(),
                                   digest_size=12).hexdigest()
        self._predictor_type = SAM2ImagePredictor
        self._local = threading.local()  # one predictor per thread: decoding and embedding may overlap

    @property
    def image_size(self) -> int:
        return int(self.model.image_size)

    def _predictor(self):
        p = getattr(self._local, "predictor", None)
        if p is None:
            p = self._predictor_type(self.model)
            s = self.image_size  # feature sizes at strides 4, 8, 16 (the package assumes 1024 pixels)
            p._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
            self._local.predictor = p
        return p

    def embed(self, image: np.ndarray) -> Embedding:
        """The SAM features of an RGB uint8 image (any size; SAM resizes it to its input square)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"SAM needs an RGB uint8 image, got {image.dtype} {image.shape}")
        p = self._predictor()
        p.set_image(image)
        feats = p._features  # sam2 1.1.0: {"image_embed": [1,C,h,w], "high_res_feats": [[1,C,h,w], ...]}
        out = Embedding(feats["image_embed"][0].float().cpu().numpy().astype(np.float16),
                        tuple(f[0].float().cpu().numpy().astype(np.float16) for f in feats["high_res_feats"]),
                        (int(image.shape[0]), int(image.shape[1])))
        p.reset_predictor()
        return out

    def segment(self, embedding: Embedding, points: Sequence[tuple[float, float]] = (),
                labels: Sequence[int] = (), box: tuple[float, float, float, float] | None = None,
                mask_input: np.ndarray | None = None) -> SamMask:
        """The mask for prompts on an embedded image.

        `points` are image coordinates (y, x) with `labels` 1 (object) or 0 (not object); `box` is
        (y0, x0, y1, x1); `mask_input` is a previous result's `logits` (iterative refinement) or a
        starting mask from `mask_logits`. One point alone gets SAM's three candidates and the best is kept.
        """
        if len(points) != len(labels):
            raise ValueError(f"{len(points)} points but {len(labels)} labels")
        if not len(points) and box is None and mask_input is None:
            raise ValueError("SAM needs a point, a box or a mask to segment")
        torch = self.torch
        p = self._predictor()
        p._features = {"image_embed": torch.from_numpy(embedding.image_embed.astype(np.float32))[None].to(self.device),
                       "high_res_feats": [torch.from_numpy(f.astype(np.float32))[None].to(self.device)
                                          for f in embedding.high_res]}
        p._orig_hw = [embedding.image_hw]
        p._is_image_set = True
        coords = np.asarray([(x, y) for y, x in points], np.float32).reshape(-1, 2) if len(points) else None
        lab = np.asarray(labels, np.int32) if len(points) else None
        xyxy = None if box is None else np.asarray([box[1], box[0], box[3], box[2]], np.float32)
        multimask = len(points) == 1 and box is None and mask_input is None
        with torch.inference_mode():
            masks, scores, logits = p.predict(coords, lab, xyxy, mask_input, multimask_output=multimask)
        p.reset_predictor()
        best = int(np.argmax(scores))
        return SamMask(masks[best] > 0, float(scores[best]), logits[best:best + 1].astype(np.float32))

    def mask_logits(self, mask: np.ndarray) -> np.ndarray:
        """A bool image-size mask as a starting `mask_input` (SAM's low-resolution logit frame)."""
        import cv2

        side = self.image_size // 4
        small = cv2.resize(mask.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA)
        return ((small * 2.0 - 1.0) * MASK_LOGIT)[None].astype(np.float32)


DEFAULT_CACHE_BYTES = 2 << 30
MAX_EMBEDDING_BYTES = 256 << 20  # SAM 2 large at 1024 px: about 8 MB
MAX_LEVELS = 8
_EMBEDDING_NAMES = {"image_embed", "image_hw", "levels", "digest", *(f"high_res_{i}" for i in range(MAX_LEVELS))}


def _digest(arrays: dict[str, np.ndarray]) -> bytes:
    """A checksum of the arrays (names, dtypes, shapes, bytes)."""
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        h.update(repr((name, arr.dtype.str, arr.shape)).encode())
        h.update(arr.tobytes())
    return h.digest()


def _embedding_from(path: Path, arrays: dict[str, np.ndarray]) -> Embedding:
    """The embedding an archive holds, when it is exactly what `put` wrote (ValueError otherwise)."""
    levels, hw, digest = arrays.get("levels"), arrays.get("image_hw"), arrays.pop("digest", None)
    if levels is None or levels.shape != () or levels.dtype.kind not in "iu" or not 0 < int(levels) <= MAX_LEVELS:
        raise ValueError(f"{path}: bad levels")
    names = {"image_embed", "image_hw", "levels", *(f"high_res_{i}" for i in range(int(levels)))}
    if set(arrays) != names:
        raise ValueError(f"{path}: members {sorted(arrays)} are not an embedding's")
    maps = [arrays["image_embed"], *(arrays[f"high_res_{i}"] for i in range(int(levels)))]
    if any(m.dtype != np.float16 or m.ndim != 3 or 0 in m.shape for m in maps):
        raise ValueError(f"{path}: feature maps must be float16 [C, h, w]")
    if hw.shape != (2,) or hw.dtype.kind not in "iu" or not all(0 < int(v) <= 1 << 20 for v in hw):
        raise ValueError(f"{path}: bad image size")
    if digest is None or digest.dtype != np.uint8 or digest.tobytes() != _digest(arrays):
        raise ValueError(f"{path}: the checksum does not match (not written by this cache, or changed since)")
    return Embedding(maps[0], tuple(maps[1:]), (int(hw[0]), int(hw[1])))


class EmbeddingCache:
    """Embeddings on disk, one `.npz` per image and model, keyed by the image's content and the model's.

    A file that cannot be read is dropped (and recomputed by the caller); writes are atomic. Past
    `max_bytes` the least recently used files go (a read counts as a use).
    """

    def __init__(self, folder: str | Path, max_bytes: int = DEFAULT_CACHE_BYTES):
        self.folder = Path(folder)
        self.max_bytes = max_bytes

    def path(self, model_key: str, image_key: str) -> Path:
        return self.folder / model_key / f"{image_key}.npz"

    def get(self, model_key: str, image_key: str) -> Embedding | None:
        """The cached embedding, or None. A file that is not exactly what `put` wrote (torn, foreign,
        a FIFO, sizes beyond an embedding's, a checksum that does not match) is dropped: recompute."""
        path = self.path(model_key, image_key)
        if not os.path.lexists(path):
            return None
        try:
            arrays = read_npz(path, max_bytes=MAX_EMBEDDING_BYTES, names=_EMBEDDING_NAMES)
            emb = _embedding_from(path, arrays)
            os.utime(path)  # recently used: trimmed last
            return emb
        except Exception as exc:  # noqa: BLE001 - a torn or foreign file: recompute
            log.warning("dropping unusable SAM embedding %s: %s", path, exc)
            self._drop(path)
            return None

    @staticmethod
    def _drop(path: Path) -> None:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove %s: %s", path, exc)

    def put(self, model_key: str, image_key: str, emb: Embedding) -> Path:
        buf = io.BytesIO()
        arrays = {f"high_res_{i}": f for i, f in enumerate(emb.high_res)}
        arrays.update(image_embed=emb.image_embed, image_hw=np.asarray(emb.image_hw, np.int64),
                      levels=np.asarray(len(emb.high_res), np.int64))
        np.savez(buf, digest=np.frombuffer(_digest(arrays), np.uint8), **arrays)
        path = atomic_write_bytes(self.path(model_key, image_key), buf.getvalue())
        self.trim(keep=path)
        return path

    def trim(self, keep: Path | None = None) -> int:
        """Remove the least recently used files until the cache fits `max_bytes`; returns how many went."""
        files = []
        for f in self.folder.glob("*/*.npz"):
            try:
                st = f.stat()
            except OSError:
                continue
            files.append((st.st_mtime, st.st_size, f))
        total = sum(size for _, size, _ in files)
        removed = 0
        for _, size, f in sorted(files, key=lambda t: t[0]):
            if total <= self.max_bytes:
                break
            if f == keep:
                continue
            f.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed

    def clear(self, model_key: str | None = None) -> int:
        """Remove the cached embeddings (of one model, or all); returns how many files went."""
        folders = [self.folder / model_key] if model_key else [d for d in self.folder.glob("*") if d.is_dir()]
        n = 0
        for d in folders:
            for f in d.glob("*.npz"):
                f.unlink(missing_ok=True)
                n += 1
        return n
