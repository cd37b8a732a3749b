"""Label clean-up: fill holes, remove small islands, smooth boundaries; each a `Change` to preview and apply.

Every operation takes a label map (uint8, 255 = not labelled) and returns the new labels it proposes;
`change` turns that into the pixels that actually change (after the document's `PaintGuard`), which
is both the preview and, through `apply_change`, one undo step. `classes=None` means every class.
Connectivity follows `app.core.loop.effort`: a region (island) is 8-connected; a hole is a 4-connected
region of other pixels that the class encloses (it does not reach the image edge).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from app.core.editing.protection import NO_GUARD, PaintGuard
from app.core.editing.stroke import Region

IGNORE_INDEX = 255


@dataclass(frozen=True, eq=False)
class Change:
    """New `values` where `mask` is set, both cropped to `region` (y0, x0, y1, x1)."""

    region: Region
    mask: np.ndarray
    values: np.ndarray

    @property
    def origin(self) -> tuple[int, int]:
        return self.region[0], self.region[1]

    @property
    def count(self) -> int:
        return int(self.mask.sum())

    def full_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """The changed pixels as a full-size bool mask (the preview)."""
        out = np.zeros(shape, bool)
        y0, x0, y1, x1 = self.region
        out[y0:y1, x0:x1] = self.mask
        return out


def _classes(labels: np.ndarray, classes: Iterable[int] | None) -> list[int]:
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=256))
    present = [int(c) for c in present if c != IGNORE_INDEX]
    if classes is None:
        return present
    wanted = {int(c) for c in classes}
    return [c for c in present if c in wanted]


def fill_holes(labels: np.ndarray, classes: Iterable[int] | None = None, *, max_area: int | None = None,
               only_unlabelled: bool = True) -> np.ndarray:
    """Give each hole of a class that class: a 4-connected region of other pixels it encloses.

    With `only_unlabelled` (the default) a hole must be wholly unlabelled (gaps a brush left);
    otherwise any enclosed region is filled. Holes larger than `max_area` pixels stay.
    """
    out = labels.copy()
    for c in _classes(labels, classes):
        other = (labels != c).astype(np.uint8)
        n, cc, stats, _ = cv2.connectedComponentsWithStats(other, connectivity=4)
        fill = np.ones(n, bool)
        fill[0] = False  # the class itself
        edge = np.concatenate([cc[0], cc[-1], cc[:, 0], cc[:, -1]])
        fill[np.unique(edge)] = False
        if max_area is not None:
            fill &= stats[:, cv2.CC_STAT_AREA] <= max_area
        if only_unlabelled:
            unlabelled = np.bincount(cc[labels == IGNORE_INDEX], minlength=n)
            fill &= unlabelled == stats[:, cv2.CC_STAT_AREA]
        if fill.any():
            out[fill[cc]] = c
    return out


def remove_islands(labels: np.ndarray, min_area: int, classes: Iterable[int] | None = None) -> np.ndarray:
    """Relabel every 8-connected region of a class smaller than `min_area` pixels.

    An island takes the label most common around it (on the ring of pixels touching it; 255 when it
    lies in unlabelled pixels; the smaller value on a tie). Islands are found on the labels as given,
    so the result does not depend on the order of the classes.
    """
    out = labels.copy()
    h, w = labels.shape
    kernel = np.ones((3, 3), np.uint8)
    for c in _classes(labels, classes):
        n, cc, stats, _ = cv2.connectedComponentsWithStats((labels == c).astype(np.uint8), connectivity=8)
        for i in np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < min_area):
            if i == 0:
                continue
            x, y, bw, bh = stats[i, :4]
            y0, x0, y1, x1 = max(y - 1, 0), max(x - 1, 0), min(y + bh + 1, h), min(x + bw + 1, w)
            island = cc[y0:y1, x0:x1] == i
            ring = cv2.dilate(island.astype(np.uint8), kernel).astype(bool) & ~island
            around = labels[y0:y1, x0:x1][ring]
            if around.size == 0:
                continue
            out[y0:y1, x0:x1][island] = np.bincount(around, minlength=256).argmax()
    return out


def smooth(labels: np.ndarray, radius: int = 2, classes: Iterable[int] | None = None) -> np.ndarray:
    """A majority filter in a disk of `radius`: each pixel takes the label most common around it.

    Unlabelled (255) takes part like a class. A pixel keeps its label on a tie; among other labels
    the smaller value wins. With `classes`, only pixels that are or become one of them change.
    """
    radius = int(radius)
    if radius < 1:
        raise ValueError(f"smoothing radius must be at least 1 pixel, got {radius}")
    size = 2 * radius + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)).astype(np.float32)
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=256))
    best = np.full(labels.shape, -1.0, np.float32)
    out = labels.copy()
    for c in present:
        own = labels == c
        score = cv2.filter2D(own.astype(np.float32), cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT_101)
        score[own] += 0.5  # counts are whole numbers: a tie keeps the pixel's own label
        better = score > best
        best[better] = score[better]
        out[better] = c
    if classes is not None:
        keep = np.fromiter({int(c) for c in classes}, np.uint8)
        touched = np.isin(labels, keep) | np.isin(out, keep)
        out = np.where(touched, out, labels)
    return out


def change(labels: np.ndarray, new: np.ndarray, guard: PaintGuard = NO_GUARD) -> Change | None:
    """The pixels where `new` differs from `labels` and `guard` allows the write; None when none."""
    if new.shape != labels.shape:
        raise ValueError(f"new labels of shape {new.shape} for labels of shape {labels.shape}")
    diff = new != labels
    allowed = guard.allowed(labels, new)
    if allowed is not None:
        diff &= allowed
    rows, cols = np.flatnonzero(diff.any(axis=1)), np.flatnonzero(diff.any(axis=0))
    if rows.size == 0:
        return None
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return Change((y0, x0, y1, x1), diff[y0:y1, x0:x1].copy(), np.ascontiguousarray(new[y0:y1, x0:x1]))


def apply_change(doc, ch: Change | None):
    """Write `ch` into a `LabelDocument` as one undo step; returns the stroke (None: nothing changed)."""
    if ch is None:
        return None
    return doc.paint(ch.origin, ch.mask, ch.values)


Operation = Callable[[np.ndarray], np.ndarray]


def clean_images(project, entries, operation: Operation, guard: PaintGuard = NO_GUARD
                 ) -> Iterator[tuple[object, int]]:
    """Apply `operation` to the saved labels of each of `entries` and save them; yields (entry, pixels changed).

    Each image's change is one stroke in its journal before the save (a crash loses nothing). Images
    without a label file are skipped. The open image should be cleaned through its own document instead.
    """
    for entry in entries:
        if entry.error is not None or not project.label_path(entry).exists():
            continue
        doc = project.load_document(entry)
        doc.guard = guard
        try:
            ch = change(doc.labels, operation(doc.labels), guard)
            if ch is not None:
                apply_change(doc, ch)
                project.save_document(entry, doc)
            yield entry, 0 if ch is None else ch.count
        finally:
            doc.stroke_listeners.clear()
            doc.listeners.clear()
