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


# Per-pixel work on class probabilities goes in chunks of rows of about this many floats (16 MiB).
CHUNK_ELEMENTS = 1 << 22


def chunk_rows(width: int, num_classes: int) -> int:
    """Rows of `width` x `num_classes` floats per chunk of about `CHUNK_ELEMENTS`."""
    return max(1, CHUNK_ELEMENTS // max(1, width * num_classes))


class BandAccumulator:
    """Weighted sums of class probabilities over a band of image rows, classes last (`[rows, width, K]`).

    Tiles are added row by row; `release(y)` hands the rows above `y` (which no later tile touches) to
    `emit(probs [rows, width, K], first_row)` in chunks of about `CHUNK_ELEMENTS` floats, and moves the rows still
    in use to the top of the band. Memory stays proportional to the band (the rows of the windows in
    flight), never to the image; `peak_elements` records the most floats held at once.
    """

    def __init__(self, num_classes: int, width: int, device: torch.device,
                 emit: Callable[[torch.Tensor, int], None]):
        self.num_classes, self.width, self.device, self.emit = num_classes, width, device, emit
        self.chunk = chunk_rows(width, num_classes)
        self.top = 0  # image row of the band's first row
        self.rows = 0  # rows of the band in use
        self.sums = torch.zeros(0, width, num_classes, device=device)
        self.weights = torch.zeros(0, width, device=device)
        self.peak_elements = 0

    def add(self, probs: torch.Tensor, weight: torch.Tensor, y: int, x: int) -> None:
        """Add a tile's probabilities `[h, w, K]` with weights `[h, w]` at image position `(y, x)`."""
        if y < self.top:
            raise ValueError(f"tile at row {y} lies above rows already released (up to {self.top})")
        h, w = weight.shape
        r = y - self.top
        self._reserve(r + h)
        self.sums[r:r + h, x:x + w].addcmul_(probs, weight[..., None])
        self.weights[r:r + h, x:x + w] += weight
        self.rows = max(self.rows, r + h)

    def release(self, upto: int) -> None:
        """Emit and drop the finished rows above image row `upto`."""
        n = min(upto - self.top, self.rows)
        if n <= 0:
            return
        for a in range(0, n, self.chunk):
            b = min(n, a + self.chunk)
            probs = self.sums[a:b] / self.weights[a:b, :, None].clamp_min(1e-12)
            self._held(probs.numel())
            self.emit(probs, self.top + a)
        rest = self.rows - n
        if rest:  # copied out first: source and target rows may overlap
            self._held((self.num_classes + 1) * rest * self.width)
            self.sums[:rest] = self.sums[n:self.rows].clone()
            self.weights[:rest] = self.weights[n:self.rows].clone()
        self.sums[rest:self.rows].zero_()
        self.weights[rest:self.rows].zero_()
        self.rows, self.top = rest, self.top + n

    def _reserve(self, rows: int) -> None:
        have = self.weights.shape[0]
        if rows <= have:
            return
        sums = self.sums.new_zeros(rows, self.width, self.num_classes)
        weights = self.weights.new_zeros(rows, self.width)
        self._held(sums.numel() + weights.numel())  # the old buffers live on while the rows in use move over
        sums[:self.rows] = self.sums[:self.rows]
        weights[:self.rows] = self.weights[:self.rows]
        self.sums, self.weights = sums, weights

    def _held(self, extra: int) -> None:
        self.peak_elements = max(self.peak_elements, self.sums.numel() + self.weights.numel() + extra)
