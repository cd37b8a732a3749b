"""Superpixels for painting: SLIC or Felzenszwalb (scikit-image) at a few scales, and a painter over them.

Large images are segmented at a working resolution of at most `max_pixels` and mapped back by
nearest neighbour, so each image pixel belongs to exactly one superpixel and a superpixel's mask is
made on demand, inside its own bounding box (memory follows the working resolution, not the image).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage

from app.core.editing.stroke import Region

Point = tuple[float, float]
Crop = tuple[tuple[int, int], np.ndarray]

DEFAULT_SEGMENTS = (300, 1200, 4800)  # coarse, medium, fine
DEFAULT_MAX_PIXELS = 1_000_000


@dataclass(eq=False)
class SuperpixelLevel:
    """One scale: `segments` (int32 ids 0..n-1) at working resolution, mapped onto an image of `shape`."""

    segments: np.ndarray
    shape: tuple[int, int]
    n: int = field(init=False)
    _boxes: list = field(init=False, repr=False)
    _rows: np.ndarray = field(init=False, repr=False)  # image row -> working row
    _cols: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.segments = np.ascontiguousarray(self.segments, dtype=np.int32)
        self.n = int(self.segments.max()) + 1
        self._boxes = ndimage.find_objects(self.segments + 1, max_label=self.n)
        (h, w), (sh, sw) = self.shape, self.segments.shape
        self._rows = np.minimum(((np.arange(h) + 0.5) * (sh / h)).astype(np.intp), sh - 1)
        self._cols = np.minimum(((np.arange(w) + 0.5) * (sw / w)).astype(np.intp), sw - 1)

    def id_at(self, point: Point) -> int | None:
        """The superpixel under an image point (y, x), or None outside the image."""
        y, x = int(np.floor(point[0])), int(np.floor(point[1]))
        if not (0 <= y < self.shape[0] and 0 <= x < self.shape[1]):
            return None
        return int(self.segments[self._rows[y], self._cols[x]])

    def ids_along(self, p0: Point, p1: Point) -> list[int]:
        """The superpixels a straight drag from `p0` to `p1` passes over, in order."""
        length = float(np.hypot(p1[0] - p0[0], p1[1] - p0[1]))
        steps = max(int(np.ceil(length)), 1)
        t = np.linspace(0.0, 1.0, steps + 1)
        ys = np.floor(p0[0] + t * (p1[0] - p0[0])).astype(np.intp)
        xs = np.floor(p0[1] + t * (p1[1] - p0[1])).astype(np.intp)
        inside = (ys >= 0) & (ys < self.shape[0]) & (xs >= 0) & (xs < self.shape[1])
        ids = self.segments[self._rows[ys[inside]], self._cols[xs[inside]]]
        _, first = np.unique(ids, return_index=True)
        return [int(i) for i in ids[np.sort(first)]]

    def pixel_ids(self) -> np.ndarray:
        """The superpixel id of every image pixel: int32 `[H, W]` at the image's resolution."""
        return self.segments[self._rows][:, self._cols]

    def mask(self, sp: int) -> Crop:
        """Superpixel `sp` as `(origin, bool mask)` in image pixels, cropped to its bounding box."""
        rs, cs = self._boxes[sp]
        y0, y1 = np.searchsorted(self._rows, rs.start), np.searchsorted(self._rows, rs.stop)
        x0, x1 = np.searchsorted(self._cols, cs.start), np.searchsorted(self._cols, cs.stop)
        crop = self.segments[self._rows[y0:y1]][:, self._cols[x0:x1]]
        return (int(y0), int(x0)), crop == sp

    def boundaries(self, region: Region | None = None) -> np.ndarray:
        """Bool map of `region` (default: the whole image): pixels whose right or lower neighbour differs."""
        y0, x0, y1, x1 = region if region is not None else (0, 0, *self.shape)
        ye, xe = min(y1 + 1, self.shape[0]), min(x1 + 1, self.shape[1])
        ids = self.segments[self._rows[y0:ye]][:, self._cols[x0:xe]]
        edge = np.zeros(ids.shape, bool)
        edge[:, :-1] |= ids[:, 1:] != ids[:, :-1]
        edge[:-1, :] |= ids[1:, :] != ids[:-1, :]
        return edge[:y1 - y0, :x1 - x0]


def working_size(shape: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """The (h, w) an image of `shape` is segmented at: itself, or scaled down to `max_pixels`."""
    h, w = shape
    scale = min(1.0, (max_pixels / float(h * w)) ** 0.5)
    return max(int(round(h * scale)), 1), max(int(round(w * scale)), 1)


def compute_levels(image: np.ndarray, segments: Sequence[int] = DEFAULT_SEGMENTS, *, method: str = "slic",
                   max_pixels: int = DEFAULT_MAX_PIXELS, compactness: float = 10.0,
                   should_stop: Callable[[], bool] | None = None,
                   on_level: Callable[[int, SuperpixelLevel], None] | None = None) -> list[SuperpixelLevel]:
    """Superpixels of an RGB uint8 image at each of `segments` (approximate counts), coarse to fine.

    `method` is "slic" or "felzenszwalb" (whose scale is chosen for about that many segments).
    `should_stop` is asked before each level (returning the levels made so far); `on_level(i, level)`
    receives each as it is done.
    """
    from skimage.segmentation import felzenszwalb, slic

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"superpixels need an RGB uint8 image, got {image.dtype} {image.shape}")
    if method not in ("slic", "felzenszwalb"):
        raise ValueError(f"unknown superpixel method {method!r}: use 'slic' or 'felzenszwalb'")
    shape = (int(image.shape[0]), int(image.shape[1]))
    h, w = working_size(shape, max_pixels)
    small = image if (h, w) == shape else cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    levels: list[SuperpixelLevel] = []
    for i, n in enumerate(segments):
        if should_stop is not None and should_stop():
            break
        if method == "slic":
            seg = slic(small, n_segments=int(n), compactness=compactness, start_label=0, channel_axis=-1)
        else:
            seg = felzenszwalb(small, scale=h * w / (4.0 * int(n)), sigma=0.8, min_size=max(h * w // (8 * int(n)), 4))
        _, seg = np.unique(seg, return_inverse=True)  # ids 0..n-1 without gaps
        level = SuperpixelLevel(seg.reshape(h, w).astype(np.int32), shape)
        levels.append(level)
        if on_level is not None:
            on_level(i, level)
    return levels


class SuperpixelPainter:
    """A press/drag/release over superpixels: each superpixel touched is painted whole, once, in one stroke."""

    def __init__(self, doc, level: SuperpixelLevel):
        if level.shape != doc.shape:
            raise ValueError(f"superpixels of an image of shape {level.shape} for a document of shape {doc.shape}")
        self.doc, self.level = doc, level
        self._value: int | None = None
        self._done: set[int] = set()
        self._last: Point | None = None

    @property
    def active(self) -> bool:
        return self._last is not None

    def press(self, point: Point, value: int) -> None:
        self.doc.begin_stroke()
        self._value, self._done, self._last = int(value), set(), point
        self._paint(self.level.ids_along(point, point))

    def move(self, point: Point) -> None:
        if self._last is None:
            return
        self._paint(self.level.ids_along(self._last, point))
        self._last = point

    def release(self, point: Point | None = None):
        """Close the stroke (one undo step); returns it (None when it changed nothing)."""
        if self._last is None:
            return None
        if point is not None:
            self.move(point)
        self._last = None
        return self.doc.end_stroke()

    def _paint(self, ids: list[int]) -> None:
        for sp in ids:
            if sp in self._done:
                continue
            self._done.add(sp)
            origin, mask = self.level.mask(sp)
            self.doc.apply(origin, mask, self._value)
