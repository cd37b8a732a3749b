"""Synthetic segmentation data: coloured shapes on textured backgrounds, and scribble labels.

Deterministic for a given seed. Used by the training tests and to build the bundled sample project.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from engine.images import IGNORE_INDEX

# Shape kinds a class (other than class 0, the background) can be, and the hue band (OpenCV hue, 0-179)
# their fill colours are drawn from. Colour is a cue but not the whole story: bands are wide and the
# background can take any hue, at a lower saturation.
SHAPE_HUES = {
    "disk": (0, 30),
    "box": (95, 130),
    "triangle": (45, 75),
    "ring": (140, 170),
}

DEFAULT_CLASSES = ("background", "disk", "box")


def make_shapes(
    n: int, size: int | tuple[int, int], seed: int, classes: Sequence[str] = DEFAULT_CLASSES
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`n` images of shapes on textured backgrounds and their dense labels.

    `classes[0]` is the background; every other name is a shape kind (`disk`, `box`, `triangle`, `ring`).
    `size` is the side or `(height, width)`. Returns `(image uint8 [H, W, 3] RGB, labels uint8 [H, W])`
    pairs, label `i` meaning `classes[i]`; every image holds one to four shapes, each at least partly
    visible. The same arguments always give the same images.
    """
    kinds = list(classes[1:])
    unknown = [k for k in kinds if k not in SHAPE_HUES]
    if unknown or not kinds:
        raise ValueError(
            f"classes after the background must be shape kinds ({', '.join(SHAPE_HUES)}); got {list(classes)}"
        )
    h, w = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    return [_make_one(rng, h, w, kinds) for _ in range(n)]


def make_scribbles(labels: np.ndarray, fraction: float = 0.15, seed: int = 0, width: int | None = None) -> np.ndarray:
    """Scribble labels from dense ones: strokes drawn inside each region, the rest 255 (not labelled).

    Every connected region gets at least one stroke through its interior (away from its border, as a
    person would draw), and random strokes are added until about `fraction` of the pixels are labelled.
    """
    rng = np.random.default_rng(seed)
    h, w = labels.shape
    width = width or max(2, round(min(h, w) / 24))
    target = fraction * h * w
    interior = np.full_like(labels, IGNORE_INDEX)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    for c in np.unique(labels):
        if c == IGNORE_INDEX:
            continue
        mask = cv2.erode((labels == c).astype(np.uint8), kernel)
        if not mask.any():  # a region too thin to erode: keep its centre line instead
            mask = (labels == c).astype(np.uint8)
        interior[mask.astype(bool)] = c
    strokes = np.zeros((h, w), np.uint8)
    for c in np.unique(interior[interior != IGNORE_INDEX]):
        count, components = cv2.connectedComponents((interior == c).astype(np.uint8))
        for i in range(1, count):
            ys, xs = np.nonzero(components == i)
            for _ in range(2):
                a, b = rng.integers(len(ys), size=2)
                cv2.line(strokes, (int(xs[a]), int(ys[a])), (int(xs[b]), int(ys[b])), 1, width)
                cv2.circle(strokes, (int(xs[a]), int(ys[a])), width, 1, -1)
    for _ in range(200):
        if np.count_nonzero(strokes.astype(bool) & (interior != IGNORE_INDEX)) >= target:
            break
        points = np.stack([rng.integers(0, w, 3), rng.integers(0, h, 3)], axis=1).astype(np.int32)
        cv2.polylines(strokes, [points], False, 1, width)
    out = np.full_like(labels, IGNORE_INDEX)
    keep = strokes.astype(bool) & (interior != IGNORE_INDEX)
    out[keep] = interior[keep]
    return out


def _make_one(rng: np.random.Generator, h: int, w: int, kinds: list[str]) -> tuple[np.ndarray, np.ndarray]:
    image = _background(rng, h, w)
    labels = np.zeros((h, w), np.uint8)
    side = min(h, w)
    for _ in range(rng.integers(1, 5)):
        index = int(rng.integers(len(kinds)))
        mask = _shape_mask(rng, kinds[index], h, w, side)
        if mask.sum() < 0.004 * h * w:
            continue
        image[mask] = _fill(rng, kinds[index], h, w)[mask]
        labels[mask] = index + 1
    return image, labels


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Low-saturation colour, smoothed noise at a random scale and faint stripes."""
    hsv = np.empty((h, w, 3), np.float32)
    hsv[..., 0] = rng.uniform(0, 180)
    hsv[..., 1] = rng.uniform(0, 70)
    hsv[..., 2] = rng.uniform(70, 200)
    scale = rng.uniform(1.0, max(h, w) / 12)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), scale)
    noise /= noise.std() + 1e-6
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(4, max(h, w) / 3)
    stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    hsv[..., 2] += rng.uniform(5, 30) * noise + rng.uniform(0, 25) * stripes
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(0, 10) * noise) % 180
    return _hsv_to_rgb(hsv)


def _fill(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    """A saturated colour from the kind's hue band, with fine noise and a shading gradient."""
    lo, hi = SHAPE_HUES[kind]
    hsv = np.empty((h, w, 3), np.float32)
    hsv[..., 0] = rng.uniform(lo, hi)
    hsv[..., 1] = rng.uniform(110, 255)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = rng.uniform(-40, 40, 2) / max(h, w)
    hsv[..., 2] = rng.uniform(110, 230) + gx * xx + gy * yy + rng.normal(0, rng.uniform(2, 14), (h, w))
    return _hsv_to_rgb(hsv)


def _shape_mask(rng: np.random.Generator, kind: str, h: int, w: int, side: int) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
    r = int(rng.uniform(0.08, 0.25) * side)
    if kind == "disk":
        cv2.circle(mask, (cx, cy), r, 1, -1)
    elif kind == "ring":
        cv2.circle(mask, (cx, cy), r, 1, max(2, r // 3))
    elif kind == "box":
        rect = ((cx, cy), (float(2 * r), float(2 * r * rng.uniform(0.5, 1.5))), float(rng.uniform(0, 90)))
        cv2.fillPoly(mask, [cv2.boxPoints(rect).round().astype(np.int32)], 1)
    else:  # triangle
        angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2 * np.pi / 3, 4 * np.pi / 3])
        pts = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1).round().astype(np.int32)
        cv2.fillPoly(mask, [pts], 1)
    return mask.astype(bool)


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    hsv = np.clip(hsv, 0, [179, 255, 255]).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
