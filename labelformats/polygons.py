"""Label regions as polygons, for the formats that only hold polygons (a lossy form; see `region_polygons`)."""

from __future__ import annotations

import cv2
import numpy as np


def region_polygons(mask: np.ndarray, tolerance: float = 1.0) -> list[np.ndarray]:
    """One polygon (float `[N, 2]` of x, y, N >= 3) per 8-connected region of `mask`.

    Each traces the region's outer boundary through its edge pixels' centres (`cv2.findContours`),
    simplified by Douglas-Peucker so that no boundary pixel moves more than `tolerance` pixels
    (0 keeps every corner). Holes are not kept; filling the polygon back differs from the mask on
    boundary pixels and inside holes. A region of one pixel or one thin line becomes the box of its
    pixels, half a pixel out.
    """
    contours, _ = cv2.findContours(np.ascontiguousarray(mask, np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for contour in contours:
        if tolerance > 0:
            contour = cv2.approxPolyDP(contour, float(tolerance), True)
        pts = contour.reshape(-1, 2).astype(np.float64)
        if len(pts) < 3 or cv2.contourArea(pts.astype(np.float32)) == 0:
            x0, y0 = pts.min(axis=0) - 0.5
            x1, y1 = pts.max(axis=0) + 0.5
            pts = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        out.append(pts)
    return out


def regions(mask: np.ndarray) -> list[np.ndarray]:
    """The 8-connected regions of a bool mask, each as a bool mask of the same size, largest first."""
    n, comp, stats, _ = cv2.connectedComponentsWithStats(np.ascontiguousarray(mask, np.uint8), connectivity=8)
    order = sorted(range(1, n), key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    return [comp == i for i in order]
