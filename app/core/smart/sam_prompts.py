"""Click-and-box segmentation with SAM on a document: prompts, refinement, accept, and the model's proposal as prompt.

Qt-free. `SamPrompt` collects one object's prompts (positive and negative clicks, a box, a starting
mask) and keeps SAM's last logits so every new click refines the previous mask. `accept` writes the
mask as one undo step through the document (its `PaintGuard` keeps protected classes).
`refine_uncertain` prompts SAM from the proposal where the model's entropy is high.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from app.core.editing import tools

IGNORE_INDEX = 255


@dataclass
class SamPrompt:
    """One object's prompts. Points are image coordinates (y, x); labels 1 = object, 0 = not object."""

    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None
    start_mask: np.ndarray | None = None  # bool [H, W]: e.g. the proposal's region under the first click
    result: object | None = None  # the last SamMask

    @property
    def empty(self) -> bool:
        return not self.points and self.box is None and self.start_mask is None

    def add_point(self, point: tuple[float, float], positive: bool = True) -> None:
        self.points.append((float(point[0]), float(point[1])))
        self.labels.append(1 if positive else 0)

    def remove_last(self) -> None:
        if self.points:
            self.points.pop()
            self.labels.pop()
        if not self.points:
            self.result = None

    def inputs(self, model) -> tuple:
        """`(points, labels, box, mask_input)` for `model.segment`: a copy, safe to decode on another thread.

        After the first click, the last result's logits are the mask input (refinement)."""
        mask_input = None
        if self.result is not None and len(self.points) > 1:
            mask_input = self.result.logits
        elif self.start_mask is not None:
            mask_input = model.mask_logits(self.start_mask)
        return list(self.points), list(self.labels), self.box, mask_input

    def run(self, model, embedding):
        """Decode the prompts (refining from the last result's logits); returns and keeps the `SamMask`."""
        self.result = model.segment(embedding, *self.inputs(model))
        return self.result


def mask_crop(mask: np.ndarray) -> tuple[tuple[int, int], np.ndarray] | None:
    """A full-size bool mask cropped to its bounding box, as `(origin, mask)`; None when empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return (y0, x0), np.ascontiguousarray(mask[y0:y1, x0:x1])


def accept(doc, mask: np.ndarray, value: int):
    """Write `value` where `mask` is set as one undo step (the document's guard applies); the stroke or None."""
    if mask.shape != doc.shape:
        raise ValueError(f"SAM mask of shape {mask.shape} for an image of shape {doc.shape}")
    crop = mask_crop(mask)
    if crop is None:
        return None
    return doc.paint(crop[0], crop[1], value)


def proposal_region(proposal: np.ndarray, point: tuple[float, float]) -> np.ndarray | None:
    """The proposal's connected region (of its class) under `point`, as a full-size bool mask; None on 255."""
    y, x = int(np.floor(point[0])), int(np.floor(point[1]))
    if not (0 <= y < proposal.shape[0] and 0 <= x < proposal.shape[1]) or proposal[y, x] == IGNORE_INDEX:
        return None
    crop = tools.flood_fill(proposal, point)
    out = np.zeros(proposal.shape, bool)
    (oy, ox), m = crop
    out[oy:oy + m.shape[0], ox:ox + m.shape[1]] = m
    return out


def refine_uncertain(model, embedding, proposal: np.ndarray, entropy: np.ndarray, *,
                     threshold: float | None = None, min_area: int = 64, max_regions: int = 16) -> np.ndarray:
    """The proposal with its uncertain regions relabelled by SAM; the input arrays are not changed.

    An uncertain region is an 8-connected region where `entropy` exceeds `threshold` (default: its
    90th percentile) of at least `min_area` pixels, largest first. For each, the proposal's main class
    there is the object: SAM gets its connected region as starting mask, a click on its most certain
    pixel, a negative click on the most certain pixel of another class nearby, and their box. Uncertain
    pixels inside SAM's mask take the object's class; those outside that the proposal gave the object
    take the most common certain class around instead.
    """
    if proposal.shape != entropy.shape:
        raise ValueError(f"proposal of shape {proposal.shape} and entropy of shape {entropy.shape}")
    if threshold is None:
        threshold = float(np.quantile(entropy, 0.9))
    uncertain = (entropy > threshold).astype(np.uint8)
    n, cc, stats, _ = cv2.connectedComponentsWithStats(uncertain, connectivity=8)
    order = [i for i in np.argsort(-stats[:, cv2.CC_STAT_AREA]) if i != 0 and stats[i, cv2.CC_STAT_AREA] >= min_area]
    refined = proposal.copy()
    h, w = proposal.shape
    for i in order[:max_regions]:
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        m = max(bw, bh) // 2 + 8
        y0, x0, y1, x1 = max(y - m, 0), max(x - m, 0), min(y + bh + m, h), min(x + bw + m, w)
        region = cc[y0:y1, x0:x1] == i
        window = proposal[y0:y1, x0:x1]
        classes = window[region]
        classes = classes[classes != IGNORE_INDEX]
        if classes.size == 0:
            continue
        c = int(np.bincount(classes).argmax())
        parts_n, parts = cv2.connectedComponents((window == c).astype(np.uint8), connectivity=8)
        touching = np.unique(parts[region & (window == c)])
        obj = np.isin(parts, touching[touching != 0])
        certain = ~(cc[y0:y1, x0:x1] > 0)
        calm = np.where(certain, -entropy[y0:y1, x0:x1], -np.inf)
        pos = np.where(obj & certain, calm, -np.inf)
        neg = np.where(~obj & certain & (window != IGNORE_INDEX), calm, -np.inf)
        if not np.isfinite(pos.max()):
            continue
        points = [np.unravel_index(int(np.argmax(pos)), pos.shape)]
        labels = [1]
        if np.isfinite(neg.max()):
            points.append(np.unravel_index(int(np.argmax(neg)), neg.shape))
            labels.append(0)
        points = [(float(py + y0) + 0.5, float(px + x0) + 0.5) for py, px in points]
        start = np.zeros(proposal.shape, bool)
        start[y0:y1, x0:x1] = obj
        box = (float(y0), float(x0), float(y1), float(x1))
        sam = model.segment(embedding, points, labels, box, model.mask_logits(start)).mask[y0:y1, x0:x1]
        out = refined[y0:y1, x0:x1]
        out[region & sam] = c
        others = window[certain & ~obj & (window != IGNORE_INDEX)]
        if others.size:
            out[region & ~sam & (window == c)] = int(np.bincount(others).argmax())
    return refined
