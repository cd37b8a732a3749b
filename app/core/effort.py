"""How much a person must draw to turn a proposal into the truth: the loop's unit of work.

One definition serves the simulated annotator (`bench.annotator`) and the app's record of what a
person changed when marking an image reviewed. For truth `T` (255 = not labelled) and a proposal
`P`, the work is, for each class `c`, the 8-connected regions of pixels where `T == c` and
`P != c` with at least `min_region` pixels: their count, and their boundary length (pixels of the
region with a 4-neighbour outside it, or on the image edge), which stands for the clicks of a polygon
around it. Labelling by hand is the same with no proposal: every region of `T`. The same
`min_region` applies to both, so assisted and manual work are counted in one unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

IGNORE_INDEX = 255
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


@dataclass(frozen=True)
class Effort:
    """The drawing a label map needs: `regions` to draw, their `boundary_px`, and the `wrong_px`
    (labelled pixels where the proposal differs from the truth) out of `labelled_px`."""

    regions: int
    boundary_px: int
    wrong_px: int
    labelled_px: int

    @property
    def wrong_fraction(self) -> float:
        return self.wrong_px / self.labelled_px if self.labelled_px else 0.0

    def __add__(self, other: Effort) -> Effort:
        return Effort(self.regions + other.regions, self.boundary_px + other.boundary_px,
                      self.wrong_px + other.wrong_px, self.labelled_px + other.labelled_px)

    def to_json(self) -> dict:
        return {"regions": self.regions, "boundary_px": self.boundary_px, "wrong_px": self.wrong_px,
                "labelled_px": self.labelled_px}


NO_EFFORT = Effort(0, 0, 0, 0)


def effort(truth: np.ndarray, proposal: np.ndarray | None = None, *, min_region: int = 1,
           ignore_index: int = IGNORE_INDEX) -> Effort:
    """The regions a person must draw to turn `proposal` into `truth` (`None`: label by hand)."""
    truth = np.asarray(truth)
    if truth.ndim != 2:
        raise ValueError(f"truth must be a 2-D label map, got shape {truth.shape}")
    labelled = truth != ignore_index
    if proposal is None:
        wrong = labelled
    else:
        proposal = np.asarray(proposal)
        if proposal.shape != truth.shape:
            raise ValueError(f"proposal shape {proposal.shape} differs from truth shape {truth.shape}")
        wrong = labelled & (proposal != truth)
    regions = boundary = 0
    for c in np.unique(truth[wrong]):
        mask = (wrong & (truth == c)).astype(np.uint8)
        n, comp, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        keep = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= max(int(min_region), 1)) + 1
        if keep.size == 0:
            continue
        if keep.size < n - 1:  # drop the small regions; none of them touches a kept one
            mask = np.isin(comp, keep).astype(np.uint8)
        inner = cv2.erode(mask, _CROSS, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        regions += int(keep.size)
        boundary += int(np.count_nonzero(mask)) - int(np.count_nonzero(inner))
    return Effort(regions, boundary, int(np.count_nonzero(wrong)), int(np.count_nonzero(labelled)))
