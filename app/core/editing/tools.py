"""Editing tools as pure functions over arrays: each returns `(origin, bool mask crop)` or None.

Points are continuous image coordinates `(y, x)`: pixel `(i, j)` covers `[i, i+1) x [j, j+1)`, so
its centre is `(i + 0.5, j + 0.5)` (a Qt scene position over the image maps to it directly).
Integer `origin`s and `Region`s `(y0, x0, y1, x1)` are pixel indices. Masks only cover the tool's
bounding box, clipped to the image, so a tool's cost follows its footprint, not the image size.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from app.core.editing.stroke import Region

Point = tuple[float, float]
Crop = tuple[tuple[int, int], np.ndarray]

IGNORE_INDEX = 255


def brush_segment(shape: tuple[int, int], p0: Point, p1: Point, radius: float) -> Crop | None:
    """A thick line from `p0` to `p1` with round caps: pixels whose centre lies within `radius`.

    The pixels under `p0` and `p1` are always included, so a tiny radius still paints.
    """
    h, w = int(shape[0]), int(shape[1])
    (ay, ax), (by, bx) = (float(p0[0]), float(p0[1])), (float(p1[0]), float(p1[1]))
    r = max(float(radius), 0.0)
    y0, y1 = max(int(np.floor(min(ay, by) - r)), 0), min(int(np.ceil(max(ay, by) + r)) + 1, h)
    x0, x1 = max(int(np.floor(min(ax, bx) - r)), 0), min(int(np.ceil(max(ax, bx) + r)) + 1, w)
    if y0 >= y1 or x0 >= x1:
        return None
    ys = (np.arange(y0, y1, dtype=np.float32) + 0.5 - ay)[:, None]
    xs = (np.arange(x0, x1, dtype=np.float32) + 0.5 - ax)[None, :]
    dy, dx = by - ay, bx - ax
    length2 = dy * dy + dx * dx
    if length2 > 0:
        t = np.clip((ys * dy + xs * dx) * (1.0 / length2), 0.0, 1.0)
        ys = ys - t * dy
        xs = xs - t * dx
    mask = ys * ys + xs * xs <= r * r
    for py, px in ((ay, ax), (by, bx)):
        iy, ix = int(np.floor(py)) - y0, int(np.floor(px)) - x0
        if 0 <= iy < mask.shape[0] and 0 <= ix < mask.shape[1]:
            mask[iy, ix] = True
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    mask = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return (y0 + int(rows[0]), x0 + int(cols[0])), mask


def polygon_mask(shape: tuple[int, int], points: Sequence[Point]) -> Crop | None:
    """The filled polygon through `points`: pixels whose centre lies inside (even-odd rule).

    Edges are half-open (a centre exactly on a left or top edge is in, on a right or bottom edge out),
    so polygons sharing an edge never both claim a pixel. Works within the polygon's bounding box.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3 or not np.isfinite(pts).all():
        return None
    h, w = int(shape[0]), int(shape[1])
    y0, x0 = max(int(np.floor(pts[:, 0].min())), 0), max(int(np.floor(pts[:, 1].min())), 0)
    y1, x1 = min(int(np.ceil(pts[:, 0].max())), h), min(int(np.ceil(pts[:, 1].max())), w)
    if y0 >= y1 or x0 >= x1:
        return None
    ya, xa = pts[:, 0], pts[:, 1]
    yb, xb = np.roll(ya, -1), np.roll(xa, -1)
    centres = (np.arange(y0, y1) + 0.5)[:, None]  # one scan line per pixel row
    crosses = ((ya <= centres) & (centres < yb)) | ((yb <= centres) & (centres < ya))
    rows, edges = np.nonzero(crosses)
    if rows.size == 0:
        return None
    t = (centres[rows, 0] - ya[edges]) / (yb[edges] - ya[edges])
    xs = xa[edges] + t * (xb[edges] - xa[edges])
    first = np.clip(np.ceil(xs - 0.5) - x0, 0, x1 - x0).astype(np.intp)  # first pixel whose centre is >= x
    toggles = np.zeros((y1 - y0, x1 - x0 + 1), np.uint8)
    np.add.at(toggles, (rows, first), 1)
    mask = (np.cumsum(toggles, axis=1, dtype=np.uint8)[:, :-1] & 1).astype(bool)
    if not mask.any():
        return None
    return (y0, x0), mask


def flood_fill(labels: np.ndarray, seed: Point | tuple[int, int], *, start: int = 256) -> Crop | None:
    """The 4-connected region of pixels sharing the seed pixel's value.

    Fills inside a window around the seed that doubles towards each side the region reaches, so a
    small region costs a small window; only a region spanning the image costs a full-image mask.
    """
    h, w = labels.shape
    sy, sx = int(np.floor(seed[0])), int(np.floor(seed[1]))
    if not (0 <= sy < h and 0 <= sx < w):
        return None
    y0, x0, y1, x1 = max(sy - start, 0), max(sx - start, 0), min(sy + start + 1, h), min(sx + start + 1, w)
    while True:
        window = np.ascontiguousarray(labels[y0:y1, x0:x1])
        fill = np.zeros((y1 - y0 + 2, x1 - x0 + 2), np.uint8)
        flags = 4 | (1 << 8) | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE
        _, _, _, (rx, ry, rw, rh) = cv2.floodFill(window, fill, (sx - x0, sy - y0), 0, 0, 0, flags)
        grow = (ry == 0 and y0 > 0, rx == 0 and x0 > 0,
                ry + rh == y1 - y0 and y1 < h, rx + rw == x1 - x0 and x1 < w)
        if not any(grow):
            mask = fill[1 + ry:1 + ry + rh, 1 + rx:1 + rx + rw].astype(bool)
            return (y0 + ry, x0 + rx), mask
        dy, dx = y1 - y0, x1 - x0
        y0, x0 = (max(y0 - dy, 0) if grow[0] else y0), (max(x0 - dx, 0) if grow[1] else x0)
        y1, x1 = (min(y1 + dy, h) if grow[2] else y1), (min(x1 + dx, w) if grow[3] else x1)


def accept_proposal(proposal: np.ndarray, labels: np.ndarray,
                    region_mask: Crop | np.ndarray | None = None, *,
                    only_unlabelled: bool = False) -> tuple[tuple[int, int], np.ndarray, np.ndarray] | None:
    """What accepting the proposal writes: `(origin, mask, values)` for `LabelDocument.apply`, or None.

    `region_mask` limits it: None (the whole image), a full-size bool mask, or a `(origin, mask)` crop
    from another tool (a polygon, a brush stroke). Pixels the model left at 255 are skipped, and with
    `only_unlabelled` so are pixels a person already labelled. The mask may include pixels whose label
    already equals the proposal (`apply` skips those).
    """
    if proposal.shape != labels.shape:
        raise ValueError(f"proposal of shape {proposal.shape} for labels of shape {labels.shape}")
    h, w = labels.shape
    if region_mask is None:
        (y0, x0), region = (0, 0), None
        y1, x1 = h, w
    elif isinstance(region_mask, tuple):
        (oy, ox), crop = region_mask
        y0, x0 = max(int(oy), 0), max(int(ox), 0)
        y1, x1 = min(int(oy) + crop.shape[0], h), min(int(ox) + crop.shape[1], w)
        if y0 >= y1 or x0 >= x1:
            return None
        region = crop[y0 - oy:y1 - oy, x0 - ox:x1 - ox].astype(bool, copy=False)
    else:
        region_mask = np.asarray(region_mask, dtype=bool)
        if region_mask.shape != labels.shape:
            raise ValueError(f"region mask of shape {region_mask.shape} for labels of shape {labels.shape}")
        rows, cols = np.flatnonzero(region_mask.any(axis=1)), np.flatnonzero(region_mask.any(axis=0))
        if rows.size == 0:
            return None
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        region = region_mask[y0:y1, x0:x1]
    values = proposal[y0:y1, x0:x1]
    mask = values != IGNORE_INDEX  # pixels already equal are left out by `apply`
    if only_unlabelled:
        mask &= labels[y0:y1, x0:x1] == IGNORE_INDEX
    if region is not None:
        mask &= region
    if not mask.any():
        return None
    return (y0, x0), mask, np.ascontiguousarray(values)


def grabcut(image: np.ndarray, box: Region, labels: np.ndarray | None = None, iterations: int = 5, *,
            value: int | None = None, margin: int | None = None, max_side: int = 800) -> Crop | None:
    """GrabCut's foreground inside `box` (y0, x0, y1, x1): pixels of the object the box frames.

    Pixels outside the box (a margin around it) are background. With `labels` and `value`, pixels
    already labelled `value` are certain foreground and pixels labelled another class certain
    background. Boxes whose longer side exceeds `max_side` are segmented at a reduced scale.
    Raises ValueError when the box leaves no background to learn from.
    """
    h, w = image.shape[:2]
    by0, bx0 = max(int(box[0]), 0), max(int(box[1]), 0)
    by1, bx1 = min(int(box[2]), h), min(int(box[3]), w)
    if by1 - by0 < 2 or bx1 - bx0 < 2:
        return None
    if margin is None:
        margin = max(8, (max(by1 - by0, bx1 - bx0) + 9) // 10)
    y0, x0, y1, x1 = max(by0 - margin, 0), max(bx0 - margin, 0), min(by1 + margin, h), min(bx1 + margin, w)
    gc = np.full((y1 - y0, x1 - x0), cv2.GC_BGD, np.uint8)
    gc[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] = cv2.GC_PR_FGD
    if labels is not None and value is not None:
        seeds = labels[y0:y1, x0:x1]
        gc[(seeds != IGNORE_INDEX) & (seeds != value)] = cv2.GC_BGD
        gc[seeds == value] = cv2.GC_FGD
    if not (gc == cv2.GC_BGD).any():
        raise ValueError("GrabCut needs background around the object: draw a box inside the image, "
                         "or label some background first")
    if not ((gc == cv2.GC_PR_FGD) | (gc == cv2.GC_FGD)).any():
        return None
    crop = np.ascontiguousarray(image[y0:y1, x0:x1, ::-1])  # cv2 models colours in BGR order
    scale = min(1.0, max_side / max(crop.shape[:2]))
    if scale < 1.0:
        size = (max(round(crop.shape[1] * scale), 1), max(round(crop.shape[0] * scale), 1))
        small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        small_gc = cv2.resize(gc, size, interpolation=cv2.INTER_NEAREST)
        _run_grabcut(small, small_gc, iterations)
        result = cv2.resize(small_gc, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_NEAREST)
        fixed = (gc == cv2.GC_BGD) | (gc == cv2.GC_FGD)
        result[fixed] = gc[fixed]
    else:
        result = gc
        _run_grabcut(crop, result, iterations)
    fg = (result == cv2.GC_FGD) | (result == cv2.GC_PR_FGD)
    mask = fg[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0]
    if not mask.any():
        return None
    return (by0, bx0), np.ascontiguousarray(mask)


def _run_grabcut(bgr: np.ndarray, gc: np.ndarray, iterations: int) -> None:
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(bgr, gc, None, bgd, fgd, max(int(iterations), 1), cv2.GC_INIT_WITH_MASK)
