"""The navigator's geometry: a small copy of a large image and the mapping between it and image pixels.

Qt-free. Rectangles are (y0, x0, y1, x1) in continuous image coordinates, like the canvas's scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True, eq=False)
class Overview:
    """`thumb` is the image scaled by `scale` (at most `max_side` pixels on its longer side)."""

    thumb: np.ndarray
    scale: float
    shape: tuple[int, int]

    @classmethod
    def of(cls, image: np.ndarray, max_side: int = 256) -> Overview:
        h, w = image.shape[:2]
        scale = min(1.0, max_side / max(h, w))
        size = (max(int(round(w * scale)), 1), max(int(round(h * scale)), 1))
        thumb = image if scale == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        return cls(np.ascontiguousarray(thumb), scale, (int(h), int(w)))

    def to_thumb(self, rect: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """An image rectangle in thumbnail pixels, clipped to the thumbnail."""
        th, tw = self.thumb.shape[:2]
        y0, x0, y1, x1 = (v * self.scale for v in rect)
        return (min(max(y0, 0.0), th), min(max(x0, 0.0), tw), min(max(y1, 0.0), th), min(max(x1, 0.0), tw))

    def to_image(self, point: tuple[float, float]) -> tuple[float, float]:
        """A thumbnail point as an image point, clipped to the image."""
        y, x = point[0] / self.scale, point[1] / self.scale
        return (min(max(y, 0.0), float(self.shape[0])), min(max(x, 0.0), float(self.shape[1])))
