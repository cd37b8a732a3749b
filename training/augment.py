"""Training augmentation: random resize and crop in one warp, horizontal flip, photometric distortion."""

from __future__ import annotations

import cv2
import numpy as np

from engine import IGNORE_INDEX

CAT_MAX_RATIO = 0.75  # a crop where one class covers more of the labelled pixels is retried
CROP_TRIES = 10


def augment(image: np.ndarray, labels: np.ndarray, crop_size: int, scale_range: tuple[float, float],
            rng: np.random.Generator, labelled: np.ndarray | None = None, corrected: np.ndarray | None = None,
            correction_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A `crop_size` square training sample: uint8 RGB `[S, S, 3]` and labels `[S, S]` (255 where padded).

    `labelled` holds flat indices of (some of) the labelled pixels; when labels are sparse, crops are
    anchored on one of them so that they keep labelled pixels. `corrected` holds flat indices of pixels
    the person corrected: with probability `correction_share` the crop is anchored on one of those.
    """
    anchors = labelled
    if corrected is not None and len(corrected) and correction_share > 0 and rng.random() < correction_share:
        anchors = corrected
    image, labels, (h, w) = _resized_crop(image, labels, crop_size, scale_range, rng, anchors,
                                          anchored=anchors is corrected)
    # Flip and distort the image part only: padding stays at the bottom and right, and black.
    if rng.random() < 0.5:
        image[:h, :w] = image[:h, :w][:, ::-1]
        labels[:h, :w] = labels[:h, :w][:, ::-1]
    image[:h, :w] = photometric_distortion(image[:h, :w], rng)
    return image, labels


def random_resized_crop(image: np.ndarray, labels: np.ndarray, crop_size: int, scale_range: tuple[float, float],
                        rng: np.random.Generator, labelled: np.ndarray | None = None,
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Resize by a random ratio in `scale_range`, then crop `crop_size` (padding image 0, labels 255).

    Of up to ten candidate windows, the first where no class covers more than 75% of the labelled pixels
    and the labelled share is at least half the image's is kept; failing that, the most labelled one.
    """
    image, labels, _ = _resized_crop(image, labels, crop_size, scale_range, rng, labelled)
    return image, labels


def _resized_crop(image: np.ndarray, labels: np.ndarray, crop_size: int, scale_range: tuple[float, float],
                  rng: np.random.Generator, labelled: np.ndarray | None, *, anchored: bool = False):
    """`random_resized_crop`, and the (height, width) of the crop's part that lies inside the image.

    With `anchored`, every candidate window holds one of the `labelled` positions, however many there are."""
    h, w = labels.shape
    ratio = rng.uniform(*scale_range)
    sh, sw = max(1, round(h * ratio)), max(1, round(w * ratio))
    sparse = labelled is not None and len(labelled) and (anchored or len(labelled) < 0.5 * h * w)
    share = (np.count_nonzero(labels != IGNORE_INDEX) / labels.size) if labels.size else 0.0
    best, best_count = None, -1
    for _ in range(CROP_TRIES):
        if sparse:
            py, px = divmod(int(labelled[rng.integers(len(labelled))]), w)
            y0 = _anchored_start(int(py * ratio), sh, crop_size, rng)
            x0 = _anchored_start(int(px * ratio), sw, crop_size, rng)
        else:
            y0 = int(rng.integers(0, sh - crop_size + 1)) if sh > crop_size else 0
            x0 = int(rng.integers(0, sw - crop_size + 1)) if sw > crop_size else 0
        window = _warp(labels, ratio, x0, y0, crop_size, cv2.INTER_NEAREST, IGNORE_INDEX)
        counts = np.bincount(window[window != IGNORE_INDEX].ravel())
        count = int(counts.sum())
        inside = min(crop_size, sh - y0) * min(crop_size, sw - x0)
        balanced = count > 0 and (np.count_nonzero(counts) < 2 or counts.max() / count < CAT_MAX_RATIO)
        if balanced and count >= 0.5 * share * inside:
            best = (x0, y0, window)
            break
        if count > best_count:
            best, best_count = (x0, y0, window), count
    x0, y0, window = best
    extent = (min(crop_size, sh - y0), min(crop_size, sw - x0))
    return _warp(image, ratio, x0, y0, crop_size, cv2.INTER_LINEAR, 0), window, extent


def photometric_distortion(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness (+-32), contrast (0.5-1.5), saturation (0.5-1.5) and hue (+-18), each with p=0.5."""
    img = image.astype(np.float32)
    if rng.random() < 0.5:
        img += rng.uniform(-32, 32)
    contrast_first = rng.random() < 0.5
    contrast = rng.uniform(0.5, 1.5) if rng.random() < 0.5 else None
    if contrast is not None and contrast_first:
        img *= contrast
    saturation = rng.uniform(0.5, 1.5) if rng.random() < 0.5 else None
    hue = rng.uniform(-18, 18) if rng.random() < 0.5 else None
    if saturation is not None or hue is not None:
        hsv = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        if saturation is not None:
            hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 255)
        if hue is not None:
            hsv[..., 0] = (hsv[..., 0] + hue / 2) % 180  # OpenCV hue runs 0-179 for 0-358 degrees
        img = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    if contrast is not None and not contrast_first:
        img *= contrast
    return np.clip(img, 0, 255).astype(np.uint8)


def _anchored_start(p: int, size: int, crop: int, rng: np.random.Generator) -> int:
    """A window start in [0, size - crop] such that the window holds position `p`."""
    if size <= crop:
        return 0
    lo, hi = max(0, p - crop + 1), min(p, size - crop)
    return int(rng.integers(lo, hi + 1)) if hi >= lo else int(np.clip(p, 0, size - crop))


def _warp(arr: np.ndarray, ratio: float, x0: int, y0: int, crop: int, interpolation: int, fill: int) -> np.ndarray:
    """The `crop`-square window at (x0, y0) of `arr` resized by `ratio`, without resizing all of `arr`."""
    # Output pixel (x, y) samples the source at ((x + x0 + 0.5) / ratio - 0.5, ...): pixel centres align.
    inv = np.array([[1 / ratio, 0, (x0 + 0.5) / ratio - 0.5], [0, 1 / ratio, (y0 + 0.5) / ratio - 0.5]])
    return cv2.warpAffine(arr, inv, (crop, crop), flags=interpolation | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(fill,) * 3 if arr.ndim == 3 else fill)
