"""Label regions as polygons, for the formats that only hold polygons (a lossy form: holes are lost).

Readers rasterise polygons in one of two conventions, and each format is written in its reader's:
- pixel centres (`region_polygons`): integer x is the centre of pixel x, and a pixel on the polygon's
  outline is inside. OpenCV's `fillPoly` (ultralytics' YOLO masks) and PIL's polygon with an outline
  (labelme) draw this way. The polygon runs through the centres of the region's boundary pixels.
- pixel areas (`region_outline`): pixel x covers [x, x+1), and a pixel is inside when its centre is.
  COCO (pycocotools) rasterises this way. The polygon runs along the outer edges of the region's pixels.
Unsimplified (`tolerance=0`), either polygon rasterises back, in its convention, to the region with its
holes filled; simplified, no boundary point moves more than `tolerance` pixels (Douglas-Peucker). Thin
parts (one pixel wide, single pixels, diagonal lines) stay thin: a polygon may have zero area in the
pixel-centre convention, which its readers still draw.
"""

from __future__ import annotations

import cv2
import numpy as np


def regions(mask: np.ndarray) -> list[np.ndarray]:
    """The 8-connected regions of a bool mask, each as a bool mask of the same size, largest first."""
    n, comp, stats, _ = cv2.connectedComponentsWithStats(np.ascontiguousarray(mask, np.uint8), connectivity=8)
    order = sorted(range(1, n), key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    return [comp == i for i in order]


def _crop(mask: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The mask's bounding box with one blank pixel around it, and the box's top-left corner."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return np.zeros((0, 0), np.uint8), 0, 0
    y0, y1, x0, x1 = rows[0], rows[-1], cols[0], cols[-1]
    return np.pad(mask[y0:y1 + 1, x0:x1 + 1].astype(np.uint8), 1), int(x0), int(y0)


def _simplify(points: np.ndarray, tolerance: float, min_area: float) -> np.ndarray:
    """Douglas-Peucker within `tolerance`, halved until the polygon keeps 3 points and `min_area`."""
    tol = float(tolerance)
    while tol >= 0.25:
        approx = cv2.approxPolyDP(points.reshape(-1, 1, 2).astype(np.int32), tol, True).reshape(-1, 2)
        if len(approx) >= 3 and abs(cv2.contourArea(approx.astype(np.float32))) >= min_area:
            return approx
        tol /= 2
    return points


def region_polygons(mask: np.ndarray, tolerance: float = 1.0) -> list[np.ndarray]:
    """Pixel-centre polygons (float `[N, 2]` of x, y, N >= 3), one per 8-connected region of `mask`.

    Each runs through the centres of the region's outer boundary pixels; a one-pixel-wide part goes
    there and back, a single pixel is three times the same point.
    """
    crop, x0, y0 = _crop(mask)
    if not crop.size:
        return []
    contours, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for contour in contours:
        pts = contour.reshape(-1, 2)
        if tolerance > 0 and len(pts) > 3:
            area = abs(cv2.contourArea(pts.astype(np.float32)))
            pts = (_simplify(pts, tolerance, 0.5 * area) if area > 0
                   else cv2.approxPolyDP(pts.reshape(-1, 1, 2), float(tolerance), True).reshape(-1, 2))
        if len(pts) == 1:
            pts = np.repeat(pts, 3, axis=0)
        elif len(pts) == 2:
            pts = pts[[0, 1, 0]]
        out.append((pts - 1 + [x0, y0]).astype(np.float64))
    return out


def region_outline(mask: np.ndarray, tolerance: float = 1.0) -> list[np.ndarray]:
    """Pixel-edge polygons (float `[N, 2]` of x, y): the outline of each 8-connected region's pixels.

    Traced through the boundary of the region drawn at twice the size, where the left or top half of
    pixel x is at 2x and its right or bottom half at 2x + 1, so `(X + 1) // 2` is the pixel edge that
    half lies on. Two pixels touching only at a corner stay one polygon, touching itself there.
    """
    crop, x0, y0 = _crop(mask)
    if not crop.size:
        return []
    double = crop.repeat(2, axis=0).repeat(2, axis=1)
    contours, _ = cv2.findContours(double, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for contour in contours:
        pts = (contour.reshape(-1, 2) + 1) // 2  # corners of the padded crop's pixels
        pts = pts[np.any(pts != np.roll(pts, 1, axis=0), axis=1)]
        if tolerance > 0:
            pts = _simplify(pts, tolerance, 0.5 * abs(cv2.contourArea(pts.astype(np.float32))))
        out.append((pts - 1 + [x0, y0]).astype(np.float64))
    return out
