"""A simulated person who corrects a proposal with the app's own tools, and counts what it did.

The interactive-segmentation protocol: the person looks at what is still wrong (outside the pixels the
boundary tolerance forgives, see `forgiven`), takes the largest wrong region (8-connected, one truth
class, at least `min_region` px), and corrects it with the app's tools, driven through the app's
Qt-free gestures (`app.core.editing.gestures`, `app.core.smart.smart_gestures`) on a real `LabelDocument`. Each
candidate move is tried on a copy; the person makes the one with the fewest actions counting what it
leaves: its own cost plus, for each wrong region of `min_region` px or more it leaves of the region or
creates elsewhere, the polygon that would redraw it. So the cheapest tool that fixes the region wins,
unless a cheaper one fixes most of it. Only moves that shrink the wrong regions count; a region no
move shrinks is given up (and counted). It stops when no wrong region of `min_region` px is left, or
after `max_actions`.

What each action costs (one action = one click, one vertex, one key press or one stroke unit):

- accept the whole proposal (Shift+A), done first when there is one: 1;
- fill (F): 1, a click on the region to recolour;
- superpixels (S): 1 per superpixel painted, at the scale (coarse, medium, fine) that costs least,
  plus 1 (a click on the Smart tools panel) when the scale changes (it starts at medium);
- brush (B): a stroke costs 1 per started 10 px of its path (a dab, with no path: 1), plus 1 per press
  of [ or ] to reach its radius from the last one (the app's steps of 20 %; it starts at 12 px);
- GrabCut (G): 2, a box pressed at one corner and released at the other;
- polygon (P) and accept-proposal-in-polygon (R): 1 per vertex, a vertex per 10 px of outline.

A polygon is charged `max(3, ceil(outline / 10))` vertices, the outline being the length of the
region's outer contour through pixel edges (holes filled: a hole of another class is a region of its
own, drawn over it); the vertices go where a person would put them (Douglas-Peucker within that
budget). A brush stroke is charged like a polygon's outline, a vertex's worth per 10 px dragged: the
hand follows the line as carefully. Segment Anything is not offered: it needs a checkpoint this
simulation cannot assume (none is installed offline).

Labelling by hand is counted the same ways: with polygons only (`polygon_labelling`: one polygon per
truth region of `min_region` px or more, what labelme users do) and with the tools but no model
(`correct` with no proposal, starting from an unlabelled image).

    python -m bench.simulated_person --images DIR --labels DIR [--proposals DIR | --synthetic] [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage
from skimage.measure import find_contours, label

from app.core.editing import tools
from app.core.editing.document import IGNORE_INDEX, LabelDocument
from app.core.editing.gestures import LEFT, AcceptRegion, Brush, Fill, GrabCut, Polygon
from app.core.loop.effort import Effort, effort
from app.core.smart.smart_gestures import Superpixel
from app.core.smart.superpixels import SuperpixelLevel, compute_levels

Point = tuple[float, float]

VERTEX_SPACING = 10.0  # px of outline (or of brush path) per action
MIN_REGION = 25
TOLERANCE = 2
MAX_ACTIONS = 2000
MAX_BRUSH_RADIUS = 500  # the Tool options panel's largest brush
BRUSH_RADIUS = 12  # the app's brush when it opens
SUPERPIXEL_LEVEL = 1  # the Smart tools panel's scale when it opens: medium
BOX_MARGIN = 3  # px a person leaves around an object when dragging a GrabCut box
TOOLS = ("fill", "superpixel", "brush", "grabcut", "polygon", "accept_region")
_ORDER = {name: i for i, name in enumerate(TOOLS)}  # ties at equal cost: the simpler gesture first


# ---- what is still wrong -----------------------------------------------------------------------------------


def forgiven(truth: np.ndarray, labels: np.ndarray, tolerance: int) -> np.ndarray:
    """Wrong pixels a person accepts as they are: design.md's boundary tolerance.

    A pixel `p` with `labels(p) != truth(p)` is forgiven when `truth(p)` occurs in `labels`, and
    `labels(p)` occurs in `truth`, within the (2t+1) x (2t+1) square around `p`. Unlabelled pixels
    (255 in `labels`) are never forgiven, and pixels ignored in `truth` are never wrong.
    """
    truth, labels = np.asarray(truth), np.asarray(labels)
    wrong = (truth != IGNORE_INDEX) & (labels != truth)
    out = np.zeros(truth.shape, bool)
    if tolerance <= 0 or not wrong.any():
        return out
    kernel = np.ones((2 * int(tolerance) + 1,) * 2, np.uint8)
    truth_near, label_near = np.zeros_like(out), np.zeros_like(out)
    for c in np.union1d(np.unique(truth[wrong]), np.unique(labels[wrong])):
        if c == IGNORE_INDEX:
            continue
        in_truth, in_labels = truth == c, labels == c
        truth_near |= in_truth & cv2.dilate(in_labels.view(np.uint8), kernel).view(bool)
        label_near |= in_labels & cv2.dilate(in_truth.view(np.uint8), kernel).view(bool)
    return wrong & truth_near & label_near


def remaining_error(truth: np.ndarray, labels: np.ndarray, tolerance: int) -> np.ndarray:
    """Pixels still wrong once the tolerance has forgiven what it forgives."""
    wrong = (truth != IGNORE_INDEX) & (labels != truth)
    return wrong & ~forgiven(truth, labels, tolerance) if tolerance > 0 else wrong


def tolerant_effort(truth: np.ndarray, proposal: np.ndarray | None, *, tolerance: int = TOLERANCE,
                    min_region: int = MIN_REGION) -> Effort:
    """`app.core.loop.effort.effort` with the forgiven pixels counted as right (no proposal: by hand)."""
    if proposal is None:
        return effort(truth, None, min_region=min_region)
    kept = np.where(forgiven(truth, proposal, tolerance), truth, proposal)
    return effort(truth, kept, min_region=min_region)


@dataclass(frozen=True, eq=False)
class ErrorRegion:
    """One wrong region: the pixels of truth class `cls` under `mask` (a bool crop placed at `origin`)."""

    cls: int
    area: int
    origin: tuple[int, int]
    mask: np.ndarray

    @property
    def box(self) -> tuple[int, int, int, int]:
        (y, x), (h, w) = self.origin, self.mask.shape
        return y, x, y + h, x + w

    def overlaps(self, full: np.ndarray) -> bool:
        y0, x0, y1, x1 = self.box
        return bool((full[y0:y1, x0:x1] & self.mask).any())


def error_regions(truth: np.ndarray, error: np.ndarray, min_region: int, *,
                  crops: bool = True) -> tuple[np.ndarray, list[ErrorRegion]]:
    """The wrong regions of `min_region` px or more (per truth class, 8-connected), largest first,
    and the mask of their pixels. With `crops=False` only the mask (the list is empty)."""
    significant = np.zeros(truth.shape, bool)
    rows, cols = np.flatnonzero(error.any(axis=1)), np.flatnonzero(error.any(axis=0))
    if rows.size == 0:
        return significant, []
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    by_class = np.where(error[y0:y1, x0:x1], truth[y0:y1, x0:x1].astype(np.int32) + 1, 0)
    comp = label(by_class, connectivity=2, background=0)  # neighbours of equal class connect
    area = np.bincount(comp.ravel())
    area[0] = 0
    keep = area >= max(int(min_region), 1)
    significant[y0:y1, x0:x1] = keep[comp]
    regions: list[ErrorRegion] = []
    if crops:
        boxes = ndimage.find_objects(comp)
        for i in np.flatnonzero(keep):
            ys, xs = boxes[i - 1]
            crop = comp[ys, xs] == i
            cls = int(by_class[ys, xs][crop][0]) - 1
            regions.append(ErrorRegion(cls, int(area[i]), (y0 + ys.start, x0 + xs.start), crop))
    regions.sort(key=lambda r: (-r.area, r.cls, r.origin))
    return significant, regions


# ---- polygons ----------------------------------------------------------------------------------------------


def outlines(mask: np.ndarray, origin: tuple[int, int] = (0, 0)) -> list[np.ndarray]:
    """The outer outline(s) of a region, holes filled: closed contours `[N, 2]` of image points (y, x)
    along pixel edges (so a polygon through them covers the region's pixels)."""
    filled = ndimage.binary_fill_holes(np.asarray(mask, bool))
    padded = np.pad(filled, 1).astype(np.float32)
    shift = np.array([origin[0] - 0.5, origin[1] - 0.5])  # padded index -> continuous image coordinates
    return [c[:-1] + shift for c in find_contours(padded, 0.5, fully_connected="high") if len(c) > 3]


def outline_length(contour: np.ndarray) -> float:
    """The length of a closed contour."""
    return float(np.hypot(*(np.roll(contour, -1, axis=0) - contour).T).sum())


def polygon_cost(contour: np.ndarray, spacing: float = VERTEX_SPACING) -> int:
    """Vertices a polygon along `contour` is charged: one per `spacing` px of outline, at least 3."""
    return max(3, math.ceil(outline_length(contour) / spacing))


def place_vertices(contour: np.ndarray, budget: int) -> np.ndarray:
    """At most `budget` (>= 3) vertices along `contour` where a person puts them: the Douglas-Peucker
    simplification with the smallest tolerance that fits the budget."""
    if len(contour) <= budget:
        return contour
    pts = np.ascontiguousarray(contour[:, ::-1], np.float32).reshape(-1, 1, 2)  # (x, y) for OpenCV
    lo, hi, best = 0.0, float(np.ptp(contour, axis=0).max()) + 1.0, None
    for _ in range(24):
        eps = (lo + hi) / 2
        approx = cv2.approxPolyDP(pts, eps, True)
        if len(approx) <= budget:
            best, hi = approx, eps
        else:
            lo = eps
    if best is None or len(best) < 3:  # a sliver: three points spread along it
        return contour[np.linspace(0, len(contour), 3, endpoint=False).astype(int)]
    return best.reshape(-1, 2)[:, ::-1].astype(np.float64)


@dataclass(frozen=True)
class HandCount:
    """Labelling an image by hand with polygons: `polygons` drawn, `vertices` clicked."""

    polygons: int
    vertices: int


def polygon_labelling(truth: np.ndarray, *, min_region: int = MIN_REGION,
                      spacing: float = VERTEX_SPACING) -> HandCount:
    """What labelme users do: one polygon per truth region of `min_region` px or more (per class,
    8-connected; 255 is not labelled), a vertex per `spacing` px of its outer outline."""
    truth = np.asarray(truth)
    polygons = vertices = 0
    _, regions = error_regions(truth, truth != IGNORE_INDEX, min_region)
    for region in regions:
        for contour in outlines(region.mask, region.origin):
            polygons += 1
            vertices += polygon_cost(contour, spacing)
    return HandCount(polygons, vertices)


# ---- the app's gestures, driven ------------------------------------------------------------------------------


class Hand:
    """The editing session the gestures talk to (`app.core.editing.gestures.Context` and `SmartContext`).

    GrabCut runs at once (the app runs it on a worker and paints the result the same way), with
    OpenCV's random generator seeded so a box gives the same cut every time. SAM is not loaded.
    """

    sam_model = None

    def __init__(self, doc: LabelDocument, levels: Sequence[SuperpixelLevel] = ()):
        self.doc = doc
        self.levels = list(levels)
        self.level = SUPERPIXEL_LEVEL
        self.value: int | None = None
        self.brush_radius = float(BRUSH_RADIUS)
        self.said: list[str] = []

    @property
    def current_class(self) -> int | None:
        return self.value

    def say(self, text: str) -> None:
        self.said.append(text)

    def run_grabcut(self, box: tuple[int, int, int, int]) -> None:
        cv2.setRNGSeed(0)
        try:
            crop = tools.grabcut(self.doc.image, box, self.doc.labels, value=self.value)
        except ValueError as e:
            self.say(f"GrabCut failed: {e}")
            return
        if crop is not None:
            self.doc.paint(crop[0], crop[1], self.value)

    def explain_at(self, pixel: tuple[int, int]) -> None:
        """Not a correction: the simulated person never asks."""

    def superpixel_level(self) -> SuperpixelLevel | None:
        return self.levels[self.level] if self.levels else None

    def sam_embedding(self) -> None:
        return None

    def run_decoder(self, work, on_result, on_failed) -> None:
        on_failed("no SAM model in the simulation")


@dataclass(frozen=True)
class Move:
    """One correction: `tool`, its `cost` in actions, the class it paints, and the gestures that make it."""

    tool: str
    cost: int
    value: int
    gestures: Callable[[Hand], None] = field(repr=False)

    def play(self, hand: Hand) -> None:
        hand.value = self.value
        self.gestures(hand)


def _polygon_gestures(kind: type[Polygon], polygons: list[np.ndarray]) -> Callable[[Hand], None]:
    def play(hand: Hand) -> None:
        for vertices in polygons:
            g = kind(hand)
            for v in vertices:
                g.press((float(v[0]), float(v[1])), LEFT)
            g.key("enter")
    return play


def _fill_gestures(seed: Point) -> Callable[[Hand], None]:
    return lambda hand: Fill(hand).press(seed, LEFT)


def _brush_gestures(p0: Point, p1: Point, radius: float) -> Callable[[Hand], None]:
    def play(hand: Hand) -> None:
        hand.brush_radius = radius
        g = Brush(hand)
        g.press(p0, LEFT)
        g.move(p1)
        g.release(p1, LEFT)
    return play


def _grabcut_gestures(box: tuple[int, int, int, int]) -> Callable[[Hand], None]:
    y0, x0, y1, x1 = box

    def play(hand: Hand) -> None:
        g = GrabCut(hand)
        g.press((y0 + 0.5, x0 + 0.5), LEFT)
        g.move((y1 - 0.5, x1 - 0.5))
        g.release((y1 - 0.5, x1 - 0.5), LEFT)
    return play


def _superpixel_gestures(level: int, points: list[Point]) -> Callable[[Hand], None]:
    def play(hand: Hand) -> None:
        hand.level = level
        for p in points:
            g = Superpixel(hand)
            g.press(p, LEFT)
            g.release(p, LEFT)
    return play


def brush_presses(current: float, needed: float) -> tuple[int, int]:
    """Presses of [ or ] (each changes the radius by 20 %, at least 1 px, within 1-500) from `current` to
    the smallest radius at least `needed` the steps reach (or the largest, 500); and that radius."""
    r, presses = int(round(current)), 0
    while r < needed and r < MAX_BRUSH_RADIUS:
        r, presses = min(r + max(1, round(r * 0.2)), MAX_BRUSH_RADIUS), presses + 1
    while r > 1:
        smaller = max(r - max(1, round(r * 0.2)), 1)
        if smaller < needed:
            break
        r, presses = smaller, presses + 1
    return presses, r


def _deepest(mask: np.ndarray) -> tuple[int, int]:
    """The pixel of `mask` farthest from its edge (the first such in raster order)."""
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(y), int(x)


def candidate_moves(region: ErrorRegion, labels: np.ndarray, *, proposal: np.ndarray | None = None,
                    level_ids: Sequence[tuple[np.ndarray, np.ndarray]] = (), allowed: Sequence[str] = TOOLS,
                    brush_radius: float = BRUSH_RADIUS, level: int = SUPERPIXEL_LEVEL) -> list[Move]:
    """The ways to paint `region` with its class the app offers, cheapest first (`brush_radius` and
    `level`: the brush size and superpixel scale set now; changing them costs)."""
    c, (oy, ox), mask = region.cls, region.origin, region.mask
    y0, x0, y1, x1 = region.box
    h, w = labels.shape
    moves: list[Move] = []
    if "fill" in allowed:  # one click on each of the (up to three) most common wrong labels in the region
        inside = labels[y0:y1, x0:x1]
        values, counts = np.unique(inside[mask], return_counts=True)
        for v in values[np.argsort(-counts, kind="stable")][:3]:
            sy, sx = _deepest(mask & (inside == v))
            moves.append(Move("fill", 1, c, _fill_gestures((oy + sy + 0.5, ox + sx + 0.5))))
    if "brush" in allowed:
        ys, xs = np.nonzero(mask)
        pts = np.stack([xs + ox + 0.5, ys + oy + 0.5], axis=1).astype(np.float32)
        (cx, cy), r = cv2.minEnclosingCircle(pts)
        if r + 0.5 <= MAX_BRUSH_RADIUS:  # a dab
            presses, radius = brush_presses(brush_radius, r + 0.5)
            moves.append(Move("brush", 1 + presses, c, _brush_gestures((cy, cx), (cy, cx), radius)))
        half = float(cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3).max())
        centre = pts.mean(axis=0)
        axis = np.linalg.svd(pts - centre, full_matrices=False)[2][0]
        along = (pts - centre) @ axis
        a, b = float(along.min()) + half, float(along.max()) - half
        if b - a > 2 * half:  # a long thin region: one stroke along it
            (ax_, ay_), (bx_, by_) = centre + a * axis, centre + b * axis
            presses, radius = brush_presses(brush_radius, half)
            cost = max(1, math.ceil((b - a) / VERTEX_SPACING)) + presses
            moves.append(Move("brush", cost, c, _brush_gestures((float(ay_), float(ax_)), (float(by_), float(bx_)),
                                                                radius)))
    if "superpixel" in allowed:
        for i, (ids, sizes) in enumerate(level_ids):
            inside = ids[y0:y1, x0:x1][mask]
            touched, in_region = np.unique(inside, return_counts=True)
            size = sizes[touched]
            chosen = touched[2 * in_region >= size]  # the superpixels mostly in the region
            if chosen.size == 0:
                chosen = touched[[int(np.argmax(in_region))]]
            ry, rx = np.nonzero(mask)
            sp_at = ids[ry + oy, rx + ox]
            points = []
            for sp in chosen:
                k = np.flatnonzero(sp_at == sp)
                k = k[len(k) // 2]
                points.append((oy + ry[k] + 0.5, ox + rx[k] + 0.5))
            moves.append(Move("superpixel", len(points) + (i != level), c, _superpixel_gestures(i, points)))
    box = (max(y0 - BOX_MARGIN, 0), max(x0 - BOX_MARGIN, 0), min(y1 + BOX_MARGIN, h), min(x1 + BOX_MARGIN, w))
    # The app seeds GrabCut with the labels (another class: certain background, this class: certain
    # object), so a box over labelled pixels only changes nothing: the person does not draw it.
    unlabelled = (labels[box[0]:box[2], box[1]:box[3]] == IGNORE_INDEX).any()
    if "grabcut" in allowed and min(y1 - y0, x1 - x0) >= 2 and unlabelled:
        moves.append(Move("grabcut", 2, c, _grabcut_gestures(box)))
    contours = outlines(mask, region.origin)
    if contours:
        budget = [polygon_cost(k) for k in contours]
        polygons = [place_vertices(k, n) for k, n in zip(contours, budget, strict=True)]
        if "polygon" in allowed:
            moves.append(Move("polygon", sum(budget), c, _polygon_gestures(Polygon, polygons)))
        if "accept_region" in allowed and proposal is not None:
            right = proposal[y0:y1, x0:x1][mask] == c  # the proposal had it right: the person had painted it over
            if 2 * int(right.sum()) >= region.area:
                moves.append(Move("accept_region", sum(budget), c, _polygon_gestures(AcceptRegion, polygons)))
    return sorted(moves, key=lambda m: (m.cost, _ORDER[m.tool]))


# ---- the person --------------------------------------------------------------------------------------------


@dataclass
class Correction:
    """What the person did to one image and what it ended with."""

    labels: np.ndarray
    actions: Counter  # tool -> actions spent with it
    moves: Counter  # tool -> moves made with it (regions it won)
    given_up: int  # regions no tool could shrink
    remaining_px: int  # pixels still wrong in regions of min_region px or more
    pixel_accuracy: float
    miou: float
    log: list[tuple[str, int, int, int]] = field(default_factory=list)  # (tool, cost, class, region area)

    @property
    def total(self) -> int:
        return sum(self.actions.values())


def agreement(truth: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Pixel accuracy and mIoU (over the classes in the truth or the labels) of `labels` against `truth`."""
    labelled = truth != IGNORE_INDEX
    if not labelled.any():
        return 1.0, 1.0
    t, p = truth[labelled], labels[labelled]
    ious = []
    for c in np.union1d(np.unique(t), np.unique(p[p != IGNORE_INDEX])):
        inter = np.count_nonzero((t == c) & (p == c))
        ious.append(inter / np.count_nonzero((t == c) | (p == c)))
    return float(np.count_nonzero(t == p) / t.size), float(np.mean(ious))


def correct(image: np.ndarray, truth: np.ndarray, proposal: np.ndarray | None = None, *,
            tolerance: int = TOLERANCE, min_region: int = MIN_REGION, max_actions: int = MAX_ACTIONS,
            levels: Sequence[SuperpixelLevel] | None = None, allowed: Sequence[str] = TOOLS) -> Correction:
    """Turn `proposal` (None: an unlabelled image) into labels a person keeps, tool by tool (see the module)."""
    truth = np.asarray(truth)
    doc = LabelDocument(np.asarray(image), None)
    actions, moves, log = Counter(), Counter(), []
    if proposal is not None:
        doc.set_proposal(np.asarray(proposal, np.uint8))
        accepted = tools.accept_proposal(doc.proposal, doc.labels, None, only_unlabelled=True)
        if accepted is not None:
            doc.paint(*accepted)
        actions["accept"] += 1
        moves["accept"] += 1
    if levels is None:
        levels = compute_levels(doc.image) if "superpixel" in allowed else []
    level_ids = [(ids, np.bincount(ids.ravel())) for ids in (lv.pixel_ids() for lv in levels)]
    hand = Hand(doc, levels)
    given_up = np.zeros(truth.shape, bool)
    n_given_up = 0
    while sum(actions.values()) < max_actions:
        error = remaining_error(truth, doc.labels, tolerance)
        significant, _ = error_regions(truth, error, min_region, crops=False)
        _, regions = error_regions(truth, error & ~given_up, min_region)
        if not regions:
            break
        region = regions[0]
        move = _choose(region, hand, truth, error, significant, tolerance, min_region, level_ids, allowed)
        if move is None:
            y0, x0, y1, x1 = region.box
            given_up[y0:y1, x0:x1] |= region.mask
            n_given_up += 1
            continue
        move.play(hand)
        actions[move.tool] += move.cost
        moves[move.tool] += 1
        log.append((move.tool, move.cost, region.cls, region.area))
    error = remaining_error(truth, doc.labels, tolerance)
    significant, _ = error_regions(truth, error, min_region, crops=False)
    acc, miou = agreement(truth, doc.labels)
    return Correction(doc.labels.copy(), actions, moves, n_given_up, int(significant.sum()), acc, miou, log)


def _choose(region: ErrorRegion, hand: Hand, truth: np.ndarray, error: np.ndarray, significant: np.ndarray,
            tolerance: int, min_region: int, level_ids, allowed) -> Move | None:
    """The move with the fewest actions, counting what it leaves: its cost plus a polygon for each wrong
    region it leaves of `region` or creates. Only moves that shrink the wrong regions count; None if none does."""
    before, doc = int(significant.sum()), hand.doc
    best, best_key = None, None
    for move in candidate_moves(region, doc.labels, proposal=doc.proposal, level_ids=level_ids, allowed=allowed,
                                brush_radius=hand.brush_radius, level=hand.level):
        if best_key is not None and move.cost >= best_key[0]:
            break  # sorted by cost: nothing later can do better
        trial = LabelDocument(doc.image, doc.labels)
        if doc.proposal is not None:
            trial.set_proposal(doc.proposal)
        move.play(Hand(trial, hand.levels))
        after_error = remaining_error(truth, trial.labels, tolerance)
        after, left = error_regions(truth, after_error, min_region)
        if int(after.sum()) >= before:
            continue
        fresh = after_error & ~error
        left_cost = sum(polygon_cost(k) for r in left if r.overlaps(fresh) or _meets(r, region)
                        for k in outlines(r.mask, r.origin))
        key = (move.cost + left_cost, move.cost)
        if best_key is None or key < best_key:
            best, best_key = move, key
    return best


def _meets(a: ErrorRegion, b: ErrorRegion) -> bool:
    """Whether two regions share a pixel."""
    ay0, ax0, ay1, ax1 = a.box
    by0, bx0, by1, bx1 = b.box
    y0, x0, y1, x1 = max(ay0, by0), max(ax0, bx0), min(ay1, by1), min(ax1, bx1)
    if y0 >= y1 or x0 >= x1:
        return False
    return bool((a.mask[y0 - ay0:y1 - ay0, x0 - ax0:x1 - ax0] & b.mask[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0]).any())


# ---- a data set --------------------------------------------------------------------------------------------


@dataclass
class ImageCount:
    """One image counted three ways, beside the boundary unit."""

    image: str
    hand_polygons: HandCount
    hand_tools: Correction | None
    assisted: Correction | None
    manual_boundary_px: int
    assisted_boundary_px: int | None  # the proposal's, at the tolerance
    proposal_wrong_pct: float | None


def count_image(name: str, image: np.ndarray, truth: np.ndarray, proposal: np.ndarray | None, *,
                tolerance: int = TOLERANCE, min_region: int = MIN_REGION, max_actions: int = MAX_ACTIONS,
                hand_tools: bool = True) -> ImageCount:
    """Polygons by hand, tools by hand (unless `hand_tools` is False) and assisted, for one image."""
    levels = compute_levels(image)
    kw = {"tolerance": tolerance, "min_region": min_region, "max_actions": max_actions, "levels": levels}
    by_tools = correct(image, truth, None, **kw) if hand_tools else None
    assisted = correct(image, truth, proposal, **kw) if proposal is not None else None
    manual = effort(truth, None, min_region=min_region)
    if proposal is None:
        return ImageCount(name, polygon_labelling(truth, min_region=min_region), by_tools, None,
                          manual.boundary_px, None, None)
    tol = tolerant_effort(truth, proposal, tolerance=tolerance, min_region=min_region)
    wrong = 100.0 * tol.wrong_px / max(tol.labelled_px, 1)
    return ImageCount(name, polygon_labelling(truth, min_region=min_region), by_tools, assisted,
                      manual.boundary_px, tol.boundary_px, wrong)


def grabcut_alone(image: np.ndarray, truth: np.ndarray, *, tolerance: int = TOLERANCE, min_region: int = MIN_REGION,
                  smallest: int = 100) -> tuple[int, int]:
    """GrabCut as the only tool, on an unlabelled image: one box per truth region of `smallest` px or more
    (its bounding box and a 3 px margin). Returns (boxes drawn, regions it fixed: no wrong region of
    `min_region` px left in it nor painted outside it, beyond the tolerance)."""
    empty = np.full(truth.shape, IGNORE_INDEX, np.uint8)
    _, regions = error_regions(truth, truth != IGNORE_INDEX, min_region)
    tried = fixed = 0
    for region in regions:
        if region.area < smallest:
            continue
        moves = candidate_moves(region, empty, allowed=("grabcut",))
        if not moves:
            continue
        doc = LabelDocument(image, empty)
        moves[0].play(Hand(doc))
        left = remaining_error(truth, doc.labels, tolerance)
        y0, x0, y1, x1 = region.box
        missed = np.zeros_like(left)
        missed[y0:y1, x0:x1] = left[y0:y1, x0:x1] & region.mask
        spilled = left & (doc.labels != IGNORE_INDEX)
        tried += 1
        fixed += not (error_regions(truth, missed, min_region, crops=False)[0].any()
                      or error_regions(truth, spilled, min_region, crops=False)[0].any())
    return tried, fixed


PERSON_COLUMNS = ("actions", "manual_polygon_actions", "manual_tool_actions", "actions_by_tool", "person_miou")


def annotator_columns(image: np.ndarray, truth: np.ndarray, proposal: np.ndarray | None, *,
                      tolerance: int = TOLERANCE, min_region: int = MIN_REGION) -> dict:
    """The columns `bench.annotator --person tools` adds to an image's row: the actions the person spent
    (with the proposal; by hand with the tools before the first model), the two hand counts, the actions
    per tool (JSON) and the mIoU of the labels the person ended with."""
    c = count_image("", image, truth, proposal, tolerance=tolerance, min_region=min_region)
    spent = c.assisted if c.assisted is not None else c.hand_tools
    return {"actions": spent.total, "manual_polygon_actions": c.hand_polygons.vertices,
            "manual_tool_actions": c.hand_tools.total,
            "actions_by_tool": json.dumps(dict(sorted(spent.actions.items()))), "person_miou": round(spent.miou, 4)}


def annotator_summary(rows: Sequence[dict]) -> dict:
    """Summed actions of `annotator_columns` rows, their ratios and the actions per tool."""
    spent = sum(int(r["actions"]) for r in rows)
    polygons = sum(int(r["manual_polygon_actions"]) for r in rows)
    by_tools = sum(int(r["manual_tool_actions"]) for r in rows)
    per_tool = Counter()
    for r in rows:
        per_tool.update(json.loads(r["actions_by_tool"]))
    return {"actions": spent, "manual_polygon_actions": polygons, "manual_tool_actions": by_tools,
            "R_actions_vs_polygons": spent / polygons if polygons else None,
            "R_actions_vs_tools": spent / by_tools if by_tools else None, "actions_by_tool": dict(per_tool)}


def synthetic_proposal(truth: np.ndarray, seed: int, *, shift: int = 2, small: int = 400, blobs: int = 8,
                       num_classes: int | None = None) -> np.ndarray:
    """A stand-in for a model's proposal: the truth with every object under `small` px removed (given
    its surroundings' class), moved `shift` px right and down, and `blobs` ellipses of a wrong class."""
    truth = np.asarray(truth)
    k = num_classes or int(truth[truth != IGNORE_INDEX].max(initial=0)) + 1
    out = truth.copy()
    for c in np.unique(truth[truth != IGNORE_INDEX]):
        n, comp, stats, _ = cv2.connectedComponentsWithStats((truth == c).view(np.uint8), connectivity=8)
        drop = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] < small) + 1
        out[np.isin(comp, drop)] = IGNORE_INDEX
    missing = out == IGNORE_INDEX
    if missing.all():
        out[:] = 0
    elif missing.any():  # the nearest labelled pixel's class
        idx = ndimage.distance_transform_edt(missing, return_distances=False, return_indices=True)
        out = out[idx[0], idx[1]]
    if shift:
        out = np.pad(out, ((shift, 0), (shift, 0)), mode="edge")[:truth.shape[0], :truth.shape[1]]
    rng = np.random.default_rng(seed)
    h, w = truth.shape
    for _ in range(blobs):
        centre = (int(rng.integers(w)), int(rng.integers(h)))
        axes = (int(rng.integers(4, 16)), int(rng.integers(4, 16)))
        cv2.ellipse(out, centre, axes, float(rng.integers(180)), 0, 360, int(rng.integers(k)), -1)
    return np.ascontiguousarray(out, np.uint8)


def table(counts: Sequence[ImageCount]) -> list[str]:
    """A Markdown table: actions by hand (polygons, tools) and assisted per image, the totals, R, tool wins."""
    lines = ["| image | proposal wrong px beyond the tolerance | by hand, polygons | by hand, tools | assisted "
             "| manual boundary px | assisted boundary px |", "|---|---|---|---|---|---|---|"]
    for c in counts:
        lines.append(f"| {c.image} | {_num(c.proposal_wrong_pct, '.1f', '%')} | {c.hand_polygons.vertices} "
                     f"| {_num(c.hand_tools and c.hand_tools.total)} | {_num(c.assisted and c.assisted.total)} "
                     f"| {c.manual_boundary_px} | {_num(c.assisted_boundary_px)} |")
    t = totals(counts)
    lines.append(f"| all {len(counts)} | {_num(t['proposal_wrong_pct'], '.1f', '%')} | {t['hand_polygon_actions']} "
                 f"| {_num(t['hand_tool_actions'])} | {_num(t['assisted_actions'])} | {t['manual_boundary_px']} "
                 f"| {_num(t['assisted_boundary_px'])} |")
    lines += ["", "| ratio | value |", "|---|---|"]
    for key in ("R_actions_vs_polygons", "R_actions_vs_tools", "R_boundary", "hand_tools_vs_polygons",
                "assisted_final_pixel_accuracy", "assisted_final_miou"):
        lines.append(f"| {key} | {_num(t[key], '.3f')} |")
    for key in ("assisted_given_up", "hand_tools_given_up"):
        lines.append(f"| {key} | {t[key]} |")
    for who in ("hand_tools", "assisted"):
        wins, spent = t[f"{who}_moves"], t[f"{who}_actions_by_tool"]
        if not wins:
            continue
        lines += ["", f"| {who.replace('_', ' ')}: tool | moves (regions won) | actions |", "|---|---|---|"]
        for tool in sorted(set(wins) | set(spent), key=lambda k: -spent.get(k, 0)):
            lines.append(f"| {tool} | {wins.get(tool, 0)} | {spent.get(tool, 0)} |")
    return lines


def totals(counts: Sequence[ImageCount]) -> dict:
    """Summed counts and the ratios over a set of images."""
    def add(items) -> Counter:
        out = Counter()
        for item in items:
            out.update(item)
        return out

    hand_tools = [c.hand_tools for c in counts if c.hand_tools is not None]
    assisted = [c for c in counts if c.assisted is not None]
    polygons = sum(c.hand_polygons.vertices for c in counts)
    manual_px = sum(c.manual_boundary_px for c in counts)
    t = {"images": len(counts), "hand_polygon_actions": polygons, "manual_boundary_px": manual_px,
         "hand_tool_actions": sum(c.total for c in hand_tools) if hand_tools else None,
         "assisted_actions": sum(c.assisted.total for c in assisted) if assisted else None,
         "assisted_boundary_px": sum(c.assisted_boundary_px for c in assisted) if assisted else None,
         "proposal_wrong_pct": (float(np.mean([c.proposal_wrong_pct for c in assisted])) if assisted else None),
         "hand_tools_moves": dict(add(c.moves for c in hand_tools)),
         "hand_tools_actions_by_tool": dict(add(c.actions for c in hand_tools)),
         "assisted_moves": dict(add(c.assisted.moves for c in assisted)),
         "assisted_actions_by_tool": dict(add(c.assisted.actions for c in assisted)),
         "assisted_given_up": sum(c.assisted.given_up for c in assisted),
         "hand_tools_given_up": sum(c.given_up for c in hand_tools),
         "assisted_final_pixel_accuracy": (float(np.mean([c.assisted.pixel_accuracy for c in assisted]))
                                           if assisted else None),
         "assisted_final_miou": float(np.mean([c.assisted.miou for c in assisted])) if assisted else None}
    full = len(hand_tools) == len(counts) == len(assisted)
    t["R_actions_vs_polygons"] = t["assisted_actions"] / polygons if assisted and polygons and full else None
    t["R_actions_vs_tools"] = (t["assisted_actions"] / t["hand_tool_actions"]
                               if full and t["hand_tool_actions"] else None)
    t["R_boundary"] = t["assisted_boundary_px"] / manual_px if assisted and manual_px and full else None
    t["hand_tools_vs_polygons"] = (t["hand_tool_actions"] / polygons
                                   if hand_tools and polygons and len(hand_tools) == len(counts) else None)
    return t


def _num(value, fmt: str = "d", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{fmt}}{suffix}"


def main(argv: list[str] | None = None) -> list[ImageCount]:
    from engine.images import list_images, read_image, read_label

    p = argparse.ArgumentParser(prog="python -m bench.simulated_person", description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=Path, required=True)
    p.add_argument("--labels", type=Path, required=True, help="truth label maps of the same names")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--proposals", type=Path, help="a folder of a model's proposals (label PNGs of the same names)")
    src.add_argument("--synthetic", action="store_true", help="stand-in proposals made from the truth: "
                     "objects under --small px removed, moved --shift px right and down, --blobs wrong blobs")
    p.add_argument("--shift", type=int, default=2, help="of --synthetic (default 2)")
    p.add_argument("--small", type=int, default=400, help="of --synthetic (default 400 px)")
    p.add_argument("--blobs", type=int, default=8, help="of --synthetic (default 8)")
    p.add_argument("--num-classes", type=int, required=True)
    p.add_argument("--limit", type=int)
    p.add_argument("--tolerance", type=int, default=TOLERANCE)
    p.add_argument("--min-region", type=int, default=MIN_REGION)
    p.add_argument("--max-actions", type=int, default=MAX_ACTIONS)
    p.add_argument("--out", type=Path, help="write per-image counts (CSV) and totals (JSON) here")
    p.add_argument("--grabcut-alone", action="store_true",
                   help="instead: how many truth regions of 100 px or more one GrabCut box fixes, unlabelled")
    args = p.parse_args(argv)
    labels = {q.stem: q for q in list_images(args.labels)}
    images = [q for q in list_images(args.images) if q.stem in labels][:args.limit]
    if not images:
        raise SystemExit(f"{args.images}: no image has a label file of the same name in {args.labels}")
    if args.grabcut_alone:
        tried = fixed = 0
        for path in images:
            t, f = grabcut_alone(read_image(path), read_label(labels[path.stem], args.num_classes),
                                 tolerance=args.tolerance, min_region=args.min_region)
            tried, fixed = tried + t, fixed + f
        print(f"GrabCut alone: {fixed} of {tried} truth regions of 100 px or more fixed by one box "
              f"(tolerance {args.tolerance}, min region {args.min_region})")
        return []
    counts, started = [], time.perf_counter()
    for i, path in enumerate(images):
        truth = read_label(labels[path.stem], args.num_classes)
        if not args.synthetic and args.proposals is None:
            raise SystemExit("give --proposals DIR or --synthetic")
        if args.synthetic:
            proposal = synthetic_proposal(truth, i, shift=args.shift, small=args.small, blobs=args.blobs,
                                          num_classes=args.num_classes)
        else:
            found = [q for q in list_images(args.proposals) if q.stem == path.stem]
            if not found:
                raise SystemExit(f"{args.proposals}: no proposal for {path.name}")
            proposal = read_label(found[0], args.num_classes)
        c = count_image(path.name, read_image(path), truth, proposal, tolerance=args.tolerance,
                        min_region=args.min_region, max_actions=args.max_actions)
        counts.append(c)
        print(f"{path.name}: polygons {c.hand_polygons.vertices}, tools {c.hand_tools.total}, assisted "
              f"{c.assisted.total} ({dict(c.assisted.actions)}), {time.perf_counter() - started:.0f} s",
              file=sys.stderr, flush=True)
    lines = table(counts)
    print("\n".join(lines))
    if args.out:
        write(args.out, counts, vars(args))
    return counts


def write(out: Path, counts: Sequence[ImageCount], settings: dict) -> None:
    """`person.csv` (one row per image) and `person.json` (the totals and the settings) in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "person.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "proposal_wrong_pct", "hand_polygon_actions", "hand_tool_actions", "assisted_actions",
                    "manual_boundary_px", "assisted_boundary_px", "assisted_actions_by_tool",
                    "hand_tool_actions_by_tool", "assisted_pixel_accuracy", "assisted_miou"])
        for c in counts:
            w.writerow([c.image, c.proposal_wrong_pct, c.hand_polygons.vertices, c.hand_tools and c.hand_tools.total,
                        c.assisted and c.assisted.total, c.manual_boundary_px, c.assisted_boundary_px,
                        json.dumps(dict(c.assisted.actions)) if c.assisted else "",
                        json.dumps(dict(c.hand_tools.actions)) if c.hand_tools else "",
                        c.assisted and c.assisted.pixel_accuracy, c.assisted and c.assisted.miou])
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()}
    (out / "person.json").write_text(json.dumps({"settings": settings, "totals": totals(counts)}, indent=2) + "\n",
                                     encoding="utf-8")


if __name__ == "__main__":
    main()
