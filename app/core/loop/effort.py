"""How much a person must draw to turn a proposal into the truth: the loop's unit of work.

One definition serves the simulated annotator (`bench.annotator`) and the app's record of what a
person changed when marking an image reviewed. For truth `T` (255 = not labelled) and a proposal
`P`, the work is, for each class `c`, the 8-connected regions of pixels where `T == c` and
`P != c` with at least `min_region` pixels: their count, and their boundary length (pixels of the
region with a 4-neighbour outside it, or on the image edge), which stands for the clicks of a polygon
around it. Labelling by hand is the same with no proposal: every region of `T`. The same
`min_region` applies to both, so assisted and manual work are counted in one unit.

Boundary tolerance: no annotator traces a boundary to the pixel, so a wrong pixel `p` is forgiven
(a person accepts it as it is) when the two maps agree up to a displacement of `tolerance` px there:
the truth's class `T(p)` occurs in `P` within the (2t+1) x (2t+1) square around `p`, and the
proposal's class `P(p)` occurs in `T` within that square. A missed object is never forgiven, however
thin: its class does not occur in `P` nearby. "Class c occurs within t px" is a dilation of the class
mask by that square (OpenCV, once per class involved), so the test costs a few dilations per image.
`tolerance=0` is the strict count. Forgiven pixels are not drawn: they count neither in the regions
nor in their boundary, and `Effort.forgiven_px` says how many there were.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

IGNORE_INDEX = 255
TOLERANCE = 2  # px: the default boundary tolerance, of the simulated annotator and of the app's record
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


@dataclass(frozen=True)
class Effort:
    """The drawing a label map needs: `regions` to draw, their `boundary_px`, and the `wrong_px`
    (labelled pixels where the proposal differs from the truth, forgiven ones included) out of
    `labelled_px`; `forgiven_px` of the wrong ones are within the boundary tolerance."""

    regions: int
    boundary_px: int
    wrong_px: int
    labelled_px: int
    forgiven_px: int = 0

    @property
    def wrong_fraction(self) -> float:
        return self.wrong_px / self.labelled_px if self.labelled_px else 0.0

    @property
    def redrawn_px(self) -> int:
        """The wrong pixels a person redraws (the forgiven ones stay as proposed)."""
        return self.wrong_px - self.forgiven_px

    def __add__(self, other: Effort) -> Effort:
        return Effort(self.regions + other.regions, self.boundary_px + other.boundary_px,
                      self.wrong_px + other.wrong_px, self.labelled_px + other.labelled_px,
                      self.forgiven_px + other.forgiven_px)

    def to_json(self) -> dict:
        return {"regions": self.regions, "boundary_px": self.boundary_px, "wrong_px": self.wrong_px,
                "labelled_px": self.labelled_px, "forgiven_px": self.forgiven_px}


NO_EFFORT = Effort(0, 0, 0, 0)


def _check(truth: np.ndarray, proposal: np.ndarray | None, tolerance: int) -> None:
    if truth.ndim != 2:
        raise ValueError(f"truth must be a 2-D label map, got shape {truth.shape}")
    if proposal is not None and proposal.shape != truth.shape:
        raise ValueError(f"proposal shape {proposal.shape} differs from truth shape {truth.shape}")
    if int(tolerance) != tolerance or tolerance < 0:
        raise ValueError(f"tolerance must be a whole number of pixels >= 0, got {tolerance!r}")


def _near(labels: np.ndarray, c: int, kernel: np.ndarray) -> np.ndarray:
    """Pixels with class `c` of `labels` within the kernel's square around them."""
    return cv2.dilate((labels == c).astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0


def forgiven(truth: np.ndarray, proposal: np.ndarray, *, tolerance: int = TOLERANCE,
             ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """The wrong labelled pixels a person accepts as proposed: bool `[H, W]`, True where `proposal`
    differs from `truth` only by a displacement of at most `tolerance` px (see the module text)."""
    truth, proposal = np.asarray(truth), np.asarray(proposal)
    _check(truth, proposal, tolerance)
    wrong = (truth != ignore_index) & (proposal != truth)
    out = np.zeros(truth.shape, bool)
    if tolerance == 0 or not wrong.any():
        return out
    kernel = np.ones((2 * int(tolerance) + 1,) * 2, np.uint8)
    t_wrong, p_wrong = truth[wrong], proposal[wrong]
    truth_in_p = np.zeros(t_wrong.shape, bool)  # T(p) occurs in P near p
    for c in np.unique(t_wrong):
        pick = t_wrong == c
        truth_in_p[pick] = _near(proposal, c, kernel)[wrong][pick]
    p_in_truth = np.zeros(p_wrong.shape, bool)  # P(p) occurs in T near p
    for c in np.unique(p_wrong[truth_in_p]):
        if c == ignore_index:
            continue  # "not labelled" is no class of the truth
        pick = truth_in_p & (p_wrong == c)
        p_in_truth[pick] = _near(truth, c, kernel)[wrong][pick]
    out[wrong] = truth_in_p & p_in_truth
    return out


def effort(truth: np.ndarray, proposal: np.ndarray | None = None, *, min_region: int = 1,
           tolerance: int = TOLERANCE, ignore_index: int = IGNORE_INDEX) -> Effort:
    """The regions a person must draw to turn `proposal` into `truth` (`None`: label by hand), wrong pixels
    within `tolerance` px of agreement forgiven (0: every wrong pixel counts)."""
    truth = np.asarray(truth)
    proposal = None if proposal is None else np.asarray(proposal)
    _check(truth, proposal, tolerance)
    labelled = truth != ignore_index
    n_forgiven = 0
    if proposal is None:
        wrong = draw = labelled
    else:
        wrong = labelled & (proposal != truth)
        draw = wrong
        if tolerance:
            spared = forgiven(truth, proposal, tolerance=tolerance, ignore_index=ignore_index)
            n_forgiven = int(np.count_nonzero(spared))
            draw = wrong & ~spared
    regions = boundary = 0
    for c in np.unique(truth[draw]):
        mask = (draw & (truth == c)).astype(np.uint8)
        n, comp, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        keep = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= max(int(min_region), 1)) + 1
        if keep.size == 0:
            continue
        if keep.size < n - 1:  # drop the small regions; none of them touches a kept one
            mask = np.isin(comp, keep).astype(np.uint8)
        inner = cv2.erode(mask, _CROSS, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        regions += int(keep.size)
        boundary += int(np.count_nonzero(mask)) - int(np.count_nonzero(inner))
    return Effort(regions, boundary, int(np.count_nonzero(wrong)), int(np.count_nonzero(labelled)), n_forgiven)


def kept_labels(truth: np.ndarray, proposal: np.ndarray | None, *, tolerance: int = TOLERANCE,
                ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """What a person who corrects `proposal` to `truth` ends up with: the proposal where it is forgiven,
    the truth everywhere else (also where the truth is not labelled)."""
    truth = np.asarray(truth)
    if proposal is None or tolerance == 0:
        return truth.copy()
    keep = forgiven(truth, proposal, tolerance=tolerance, ignore_index=ignore_index)
    return np.where(keep, np.asarray(proposal), truth).astype(truth.dtype)


def agreement(truth: np.ndarray, labels: np.ndarray, num_classes: int, *,
              ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """The confusion matrix `int64 [K, K + 1]` over the labelled pixels of `truth` (rows: truth, columns:
    `labels`); the last column counts pixels `labels` gives no class (such as "not labelled")."""
    truth, labels = np.asarray(truth), np.asarray(labels)
    valid = (truth != ignore_index) & (truth < num_classes)
    t = truth[valid].astype(np.int64)
    p = np.minimum(labels[valid].astype(np.int64), num_classes)
    cm = np.bincount(t * (num_classes + 1) + p, minlength=num_classes * (num_classes + 1))
    return cm.reshape(num_classes, num_classes + 1)


def agreement_scores(confusion: np.ndarray) -> tuple[float, float]:
    """Pixel accuracy and mIoU (over the classes in either map) of an `agreement` matrix; both 1.0 when
    nothing is labelled."""
    cm = np.asarray(confusion, dtype=np.float64)
    k = cm.shape[0]
    tp = np.diag(cm[:, :k])
    union = cm.sum(1) + cm[:, :k].sum(0) - tp
    total = cm.sum()
    accuracy = float(tp.sum() / total) if total else 1.0
    present = union > 0
    miou = float(np.mean(tp[present] / union[present])) if present.any() else 1.0
    return accuracy, miou
