"""The effort unit on hand-made label maps: exact counts of regions, boundary pixels and wrong pixels."""

import numpy as np
import pytest

from app.core.effort import Effort, effort
from app.core.validation_split import pick_validation, wanted


def test_two_regions_by_hand():
    truth = np.zeros((6, 8), np.uint8)
    truth[1:4, 1:4] = 1  # a 3x3 square: 8 boundary pixels, 1 inside
    truth[:, 6:] = 2  # a 6x2 strip on the right edge: every pixel is on the boundary
    got = effort(truth)
    # class 0 is one region (48 - 9 - 12 = 27 pixels) whose boundary is all but its interior
    class0 = (truth == 0)
    inner0 = sum(1 for y in range(6) for x in range(8) if class0[y, x] and 0 < y < 5 and 0 < x < 7
                 and class0[y - 1, x] and class0[y + 1, x] and class0[y, x - 1] and class0[y, x + 1])
    assert got == Effort(regions=3, boundary_px=8 + 12 + 27 - inner0, wrong_px=48, labelled_px=48)


def test_a_hole_is_its_own_region_and_ignore_pixels_cost_nothing():
    truth = np.full((7, 7), 255, np.uint8)
    truth[1:6, 1:6] = 1
    truth[3, 3] = 2  # a one-pixel hole of another class
    proposal = np.ones((7, 7), np.uint8)  # right everywhere but the hole (and the ignored frame)
    got = effort(truth, proposal)
    assert got == Effort(regions=1, boundary_px=1, wrong_px=1, labelled_px=25)
    # a proposal wrong on the ignored frame only costs nothing
    proposal[3, 3] = 2
    proposal[0, :] = 0
    assert effort(truth, proposal) == Effort(0, 0, 0, 25)


def test_min_region_drops_small_regions_but_counts_their_pixels():
    truth = np.zeros((10, 10), np.uint8)
    proposal = truth.copy()
    proposal[0, 0] = 1  # a one-pixel error
    proposal[5:8, 5:8] = 1  # a 3x3 error: 8 boundary pixels
    assert effort(truth, proposal) == Effort(2, 9, 10, 100)
    assert effort(truth, proposal, min_region=4) == Effort(1, 8, 10, 100)


def test_diagonal_pixels_are_one_region():
    truth = np.zeros((4, 4), np.uint8)
    truth[0, 0] = truth[1, 1] = truth[2, 2] = 1
    got = effort(truth, np.zeros_like(truth))
    assert (got.regions, got.boundary_px, got.wrong_px) == (1, 3, 3)


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="differs"):
        effort(np.zeros((3, 3), np.uint8), np.zeros((3, 4), np.uint8))


def test_validation_split_is_deterministic_grows_and_keeps_members():
    names = [f"img_{i:03d}.png" for i in range(40)]
    first = pick_validation(names[:10])
    assert len(first) == wanted(10) == 2
    assert first == pick_validation(list(reversed(names[:10])))
    later = pick_validation(names, first)
    assert set(first) <= set(later) and len(later) == 6  # ceil(0.15 * 40)
    # a member the person excluded leaves and another takes its place; so does one no longer a candidate
    again = pick_validation(names, later, excluded=[later[0]])
    assert later[0] not in again and set(later[1:]) <= set(again) and len(again) == 6
    fewer = pick_validation([n for n in names if n != later[1]], later)
    assert later[1] not in fewer and len(fewer) == 6
    assert pick_validation(["a.png"]) == ["a.png"] and pick_validation([]) == []
