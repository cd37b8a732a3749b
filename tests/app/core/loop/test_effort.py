"""The effort unit on hand-made label maps: exact counts of regions, boundary pixels and wrong pixels, the
boundary tolerance (a shifted proposal, a missed thin object), the labels a person keeps, and properties
checked against brute-force definitions."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.loop.effort import Effort, agreement, agreement_scores, effort, forgiven, kept_labels
from app.core.loop.validation_split import pick_validation, wanted


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


# ---- the boundary tolerance --------------------------------------------------------------------------------

def _street(h: int = 96, w: int = 128) -> np.ndarray:
    """A small scene: sky, a building, road, a car, and a pole one pixel wide."""
    t = np.zeros((h, w), np.uint8)  # sky
    t[20:60, 10:70] = 1  # building
    t[60:, :] = 2  # road
    yy, xx = np.mgrid[:h, :w]
    t[((yy - 70) ** 2 / 64 + (xx - 95) ** 2 / 225) <= 1] = 3  # car
    t[15:75, 80] = 4  # a thin pole
    return t


def _shifted(t: np.ndarray, s: int) -> np.ndarray:
    """The map moved `s` px right and down (the edge rows and columns repeated)."""
    return np.pad(t, ((s, 0), (s, 0)), mode="edge")[:t.shape[0], :t.shape[1]]


def test_a_proposal_moved_two_pixels_costs_little_at_tolerance_two_and_a_lot_strictly():
    truth = _street()
    manual = effort(truth).boundary_px
    moved = _shifted(truth, 2)
    strict, tolerant = effort(truth, moved, tolerance=0), effort(truth, moved, tolerance=2)
    assert strict.boundary_px > 0.4 * manual
    assert tolerant.boundary_px < 0.05 * manual
    assert tolerant.wrong_px == strict.wrong_px and tolerant.forgiven_px == strict.wrong_px - tolerant.redrawn_px
    assert strict.forgiven_px == 0
    # moved further than the tolerance: most of it is to be redrawn again
    assert effort(truth, _shifted(truth, 5), tolerance=2).boundary_px > 0.3 * manual


def test_a_missed_thin_object_is_never_forgiven():
    truth = _street()
    proposal = truth.copy()
    proposal[truth == 4] = 1  # the pole missed: the building's class in its place
    pole = truth == 4
    for t in (0, 1, 2, 5):
        assert not forgiven(truth, proposal, tolerance=t)[pole].any()
        got = effort(truth, proposal, tolerance=t)
        assert (got.regions, got.wrong_px, got.forgiven_px) == (1, int(pole.sum()), 0)
        assert got.boundary_px == int(pole.sum())  # one pixel wide: every pixel is on its boundary


def test_a_pole_drawn_one_pixel_aside_is_forgiven():
    truth = _street()
    proposal = truth.copy()
    proposal[15:75, 80] = truth[15:75, 79]  # what is beside the pole where it stands
    proposal[15:75, 81] = 4  # and the pole one column to the right
    assert effort(truth, proposal, tolerance=1).boundary_px == 0
    assert effort(truth, proposal, tolerance=0).boundary_px == 120  # strictly: both columns, every pixel


def test_kept_labels_are_the_proposal_where_forgiven_and_the_truth_elsewhere():
    truth = _street()
    truth[:4, :4] = 255  # not labelled
    proposal = _shifted(_street(), 2)
    proposal[40:50, 100:110] = 5  # a blob of a class the truth lacks there: never forgiven
    kept = kept_labels(truth, proposal, tolerance=2)
    spared = forgiven(truth, proposal, tolerance=2)
    assert spared.any() and np.array_equal(kept[spared], proposal[spared])
    assert np.array_equal(kept[~spared], truth[~spared])
    assert not spared[40:50, 100:110].any() and (kept[:4, :4] == 255).all()
    assert np.array_equal(kept_labels(truth, proposal, tolerance=0), truth)
    assert np.array_equal(kept_labels(truth, None), truth)
    # what is kept costs nothing more to draw at the same tolerance
    assert effort(truth, kept, tolerance=2) == Effort(0, 0, int(spared.sum()), int((truth != 255).sum()),
                                                       int(spared.sum()))


def test_tolerance_must_be_a_whole_number_of_pixels():
    t = np.zeros((3, 3), np.uint8)
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match="tolerance"):
            effort(t, t, tolerance=bad)


def test_agreement_counts_unlabelled_pixels_as_wrong():
    truth = np.array([[0, 0, 1, 1], [0, 0, 1, 255]], np.uint8)
    labels = np.array([[0, 1, 1, 1], [255, 0, 1, 0]], np.uint8)
    cm = agreement(truth, labels, 2)
    assert cm.tolist() == [[2, 1, 1], [0, 3, 0]]
    accuracy, miou = agreement_scores(cm)
    assert accuracy == pytest.approx(5 / 7)
    assert miou == pytest.approx((2 / 4 + 3 / 4) / 2)  # class 0: 2 of 4 (+1 in column 1); class 1: 3 of 4
    assert agreement_scores(agreement(truth, truth, 2)) == (1.0, 1.0)


# ---- properties, against brute-force definitions ---------------------------------------------------------

def _reference_forgiven(truth, proposal, t):
    h, w = truth.shape
    out = np.zeros(truth.shape, bool)
    for y in range(h):
        for x in range(w):
            if truth[y, x] == 255 or truth[y, x] == proposal[y, x]:
                continue
            win = (slice(max(0, y - t), y + t + 1), slice(max(0, x - t), x + t + 1))
            out[y, x] = (proposal[win] == truth[y, x]).any() and (truth[win] == proposal[y, x]).any()
    return out


def _reference_strict(truth, proposal, min_region):
    """The count as the unit defines it, with scipy's labelling and an explicit neighbour test."""
    from scipy import ndimage

    labelled = truth != 255
    wrong = labelled & (proposal != truth)
    regions = boundary = 0
    for c in np.unique(truth[wrong]):
        comp, n = ndimage.label(wrong & (truth == c), structure=np.ones((3, 3)))
        for i in range(1, n + 1):
            region = comp == i
            if region.sum() < min_region:
                continue
            regions += 1
            padded = np.pad(region, 1)
            inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
            boundary += int((region & ~inner).sum())
    return Effort(regions, boundary, int(wrong.sum()), int(labelled.sum()))


label_maps = st.tuples(st.integers(3, 14), st.integers(3, 14), st.integers(0, 2**32 - 1)).map(
    lambda a: _random_pair(*a))


def _random_pair(h, w, seed):
    rng = np.random.default_rng(seed)
    blocky = lambda: np.kron(rng.integers(0, 4, (h // 2 + 1, w // 2 + 1)), np.ones((2, 2), int))[:h, :w]  # noqa: E731
    truth = blocky().astype(np.uint8)
    truth[rng.random((h, w)) < 0.1] = 255
    proposal = np.where(rng.random((h, w)) < 0.7, truth, blocky()).astype(np.uint8)
    proposal[truth == 255] = rng.integers(0, 4)
    return truth, proposal


@settings(max_examples=60, deadline=None)
@given(label_maps, st.integers(0, 3))
def test_forgiven_matches_its_definition_pixel_by_pixel(pair, t):
    truth, proposal = pair
    got = forgiven(truth, proposal, tolerance=t)
    assert np.array_equal(got, _reference_forgiven(truth, proposal, t))
    assert not (got & (truth == proposal)).any()
    if t:
        assert not (forgiven(truth, proposal, tolerance=t - 1) & ~got).any()  # more tolerance forgives more


@settings(max_examples=60, deadline=None)
@given(label_maps, st.integers(1, 6))
def test_tolerance_zero_is_the_strict_count(pair, min_region):
    truth, proposal = pair
    assert effort(truth, proposal, tolerance=0, min_region=min_region) == _reference_strict(truth, proposal,
                                                                                             min_region)
    tolerant = effort(truth, proposal, tolerance=2, min_region=min_region)
    assert tolerant.wrong_px == int(((truth != 255) & (truth != proposal)).sum())
    assert tolerant.forgiven_px == int(forgiven(truth, proposal, tolerance=2).sum())
