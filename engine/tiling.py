"""Sliding windows: where the tiles go, how their predictions blend, and a band-limited accumulator."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of windows of size `tile` covering `length`, overlapping by at least `overlap` of a tile.

    The first window starts at 0, the last ends at `length`, and the ones between are spread evenly.
    """
    if length <= tile:
        return [0]
    stride = max(1, math.floor(tile * (1.0 - overlap)))
    n = math.ceil((length - tile) / stride) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def tile_grid(height: int, width: int, tile_h: int, tile_w: int, overlap: float) -> list[tuple[int, int]]:
    """Top-left corners `(y, x)` of the windows covering a `height` x `width` image, row by row."""
    return [(y, x) for y in tile_starts(height, tile_h, overlap) for x in tile_starts(width, tile_w, overlap)]


def ramp(size: int, length: int, start: bool, end: bool) -> np.ndarray:
    """1-D blending weights: 1 inside, falling smoothly (a raised cosine over `length` pixels) towards the
    start and/or the end of the window; no fall-off on sides that lie on the image border."""
    w = np.ones(size, np.float32)
    length = min(length, size // 2)
    if length > 0:
        t = (np.arange(length, dtype=np.float32) + 0.5) / length
        rise = 0.5 - 0.5 * np.cos(np.pi * t)
        if start:
            w[:length] = rise
        if end:
            w[size - length:] = rise[::-1]
    return w


def tile_weights(y: int, x: int, tile_h: int, tile_w: int, height: int, width: int, overlap: float) -> np.ndarray:
    """Blending weights `[tile_h, tile_w]` of the window at `(y, x)` in a `height` x `width` image."""
    wy = ramp(tile_h, round(tile_h * overlap), y > 0, y + tile_h < height)
    wx = ramp(tile_w, round(tile_w * overlap), x > 0, x + tile_w < width)
    return np.outer(wy, wx)


class BandAccumulator:
    """Weighted sums of class probabilities over a band of image rows.

    Tiles are added row by row; `release(y)` hands the rows above `y` (which no later tile touches) to
    `emit(probs [K, rows, width], first_row)` and forgets them, so memory stays proportional to the band,
    never to the image. `peak_elements` records the largest number of floats held at once.
    """

    def __init__(self, num_classes: int, width: int, device: torch.device,
                 emit: Callable[[torch.Tensor, int], None]):
        self.num_classes, self.width, self.device, self.emit = num_classes, width, device, emit
        self.top = 0  # image row of the band's first row
        self.sums = torch.zeros(num_classes, 0, width, device=device)
        self.weights = torch.zeros(0, width, device=device)
        self.peak_elements = 0

    def add(self, probs: torch.Tensor, weight: torch.Tensor, y: int, x: int) -> None:
        """Add a tile's probabilities `[K, h, w]` with weights `[h, w]` at image position `(y, x)`."""
        if y < self.top:
            raise ValueError(f"tile at row {y} lies above rows already released (up to {self.top})")
        h, w = weight.shape
        self._grow(y + h - self.top)
        r = y - self.top
        self.sums[:, r:r + h, x:x + w].addcmul_(probs, weight)
        self.weights[r:r + h, x:x + w] += weight

    def release(self, upto: int) -> None:
        """Emit and drop the finished rows above image row `upto`."""
        n = min(upto - self.top, self.weights.shape[0])
        if n <= 0:
            return
        probs = self.sums[:, :n] / self.weights[:n].clamp_min(1e-12)
        self.emit(probs, self.top)
        self.sums = self.sums[:, n:]
        self.weights = self.weights[n:]
        self.top += n

    def _grow(self, rows: int) -> None:
        have = self.weights.shape[0]
        if rows <= have:
            return
        extra = rows - have
        held = _storage_elements(self.sums) + _storage_elements(self.weights)
        self.sums = torch.cat([self.sums, self.sums.new_zeros(self.num_classes, extra, self.width)], dim=1)
        self.weights = torch.cat([self.weights, self.weights.new_zeros(extra, self.width)], dim=0)
        # While copying, the old buffers (released rows included) and the new ones exist together.
        held += self.sums.numel() + self.weights.numel()
        self.peak_elements = max(self.peak_elements, held)


def _storage_elements(t: torch.Tensor) -> int:
    return t.untyped_storage().nbytes() // t.element_size()
