"""Editing tools as pure functions: brush, flood fill, polygon, accept-proposal, GrabCut."""

import cv2
import numpy as np
import pytest

from app.core.editing import tools
from app.core.editing.document import LabelDocument


def place(shape, crop):
    """A tool's `(origin, mask)` crop as a full-size bool mask."""
    full = np.zeros(shape, bool)
    if crop is not None:
        (y, x), mask = crop
        full[y:y + mask.shape[0], x:x + mask.shape[1]] = mask
    return full


def centres(shape):
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    return ys + 0.5, xs + 0.5


# ---- brush -------------------------------------------------------------------------------------------

def test_brush_segment_is_a_capsule_of_pixel_centres():
    shape = (60, 70)
    p0, p1, r = (20.3, 10.8), (35.1, 50.2), 5.5
    got = place(shape, tools.brush_segment(shape, p0, p1, r))
    cy, cx = centres(shape)
    d = np.array(p1) - np.array(p0)
    t = np.clip(((cy - p0[0]) * d[0] + (cx - p0[1]) * d[1]) / (d @ d), 0, 1)
    want = (cy - p0[0] - t * d[0]) ** 2 + (cx - p0[1] - t * d[1]) ** 2 <= r * r
    np.testing.assert_array_equal(got, want)


def test_brush_crop_is_tight_and_clipped():
    (y, x), mask = tools.brush_segment((50, 50), (-2.0, 25.5), (-2.0, 25.5), 4)
    assert (y, x) == (0, 22)
    assert mask.any(axis=1)[0] and mask.any(axis=1)[-1] and mask.any(axis=0)[0] and mask.any(axis=0)[-1]
    assert tools.brush_segment((50, 50), (-20.0, -20.0), (-30.0, -10.0), 3) is None


def test_tiny_brush_still_paints_the_pixels_under_the_points():
    got = place((10, 10), tools.brush_segment((10, 10), (3.0, 3.0), (3.0, 3.0), 0.1))
    assert got.sum() == 1 and got[3, 3]


# ---- polygon -----------------------------------------------------------------------------------------

def test_polygon_square_covers_exactly_its_pixels():
    (y, x), mask = tools.polygon_mask((40, 40), [(5, 5), (5, 15), (15, 15), (15, 5)])
    assert (y, x) == (5, 5) and mask.shape == (10, 10) and mask.all()


def test_polygon_matches_even_odd_point_in_polygon():
    rng = np.random.default_rng(3)
    shape = (50, 60)
    pts = rng.uniform(-5, 65, (9, 2))  # self-intersecting, partly outside
    got = place(shape, tools.polygon_mask(shape, pts))
    cy, cx = centres(shape)
    inside = np.zeros(shape, bool)
    for (ya, xa), (yb, xb) in zip(pts, np.roll(pts, -1, axis=0), strict=True):
        crosses = (ya <= cy) != (yb <= cy)
        with np.errstate(divide="ignore", invalid="ignore"):
            xcross = xa + (cy - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (cx >= xcross)
    assert got.any()
    np.testing.assert_array_equal(got, inside)


def test_polygons_sharing_an_edge_never_share_a_pixel():
    shape = (30, 30)
    a = place(shape, tools.polygon_mask(shape, [(2.3, 2.1), (25.7, 3.4), (14.2, 20.9)]))
    b = place(shape, tools.polygon_mask(shape, [(2.3, 2.1), (14.2, 20.9), (1.0, 28.0)]))
    assert not (a & b).any()


def test_degenerate_polygons_give_nothing():
    assert tools.polygon_mask((10, 10), [(1, 1), (5, 5)]) is None
    assert tools.polygon_mask((10, 10), [(1, 1), (5, 5), (9, 9)]) is None  # zero area
    assert tools.polygon_mask((10, 10), [(20, 20), (20, 30), (30, 30)]) is None  # outside


# ---- flood fill --------------------------------------------------------------------------------------

def reference_fill(labels, seed):
    same = (labels == labels[seed]).astype(np.uint8)
    _, comp = cv2.connectedComponents(same, connectivity=4)
    return comp == comp[seed]


def test_flood_fill_is_4_connected_and_same_valued():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, (40, 50), dtype=np.uint8)
    labels[rng.random(labels.shape) < 0.1] = 255
    for seed in [(0, 0), (20, 25), (39, 49), (7, 31)]:
        got = place(labels.shape, tools.flood_fill(labels, seed))
        np.testing.assert_array_equal(got, reference_fill(labels, seed))


def test_flood_fill_diagonal_neighbours_are_separate():
    labels = np.eye(5, dtype=np.uint8)
    got = place(labels.shape, tools.flood_fill(labels, (2.5, 2.5)))
    assert got.sum() == 1 and got[2, 2]


def test_flood_fill_grows_its_window_along_a_long_snake():
    labels = np.ones((900, 900), np.uint8)
    labels[3::4] = 0  # rows of 0s between bands of 1s, joined at alternating ends: one long path
    for i, row in enumerate(range(3, 896, 4)):
        labels[row + 1:row + 4, 0 if i % 2 else -1] = 0
    seed = (3, 450)
    got = place(labels.shape, tools.flood_fill(labels, seed, start=8))
    want = reference_fill(labels, seed)
    np.testing.assert_array_equal(got, want)
    assert want.sum() > 900 * 100


def test_flood_fill_outside_the_image_gives_nothing():
    assert tools.flood_fill(np.zeros((5, 5), np.uint8), (7, 1)) is None


# ---- accept proposal ---------------------------------------------------------------------------------

def proposal_and_labels():
    rng = np.random.default_rng(5)
    proposal = rng.integers(0, 3, (30, 40), dtype=np.uint8)
    proposal[:3] = 255  # the model said nothing there
    labels = np.full((30, 40), 255, np.uint8)
    labels[10:20, 10:20] = 1
    return proposal, labels


def test_accept_whole_proposal_writes_it_except_where_it_is_empty():
    proposal, labels = proposal_and_labels()
    doc = LabelDocument(np.zeros((30, 40, 3), np.uint8), labels)
    origin, mask, values = tools.accept_proposal(proposal, doc.labels)
    doc.paint(origin, mask, values)
    np.testing.assert_array_equal(doc.labels[3:], proposal[3:])
    assert (doc.labels[:3] == 255).all()
    doc.undo()
    np.testing.assert_array_equal(doc.labels, labels)


def test_accept_proposal_only_where_unlabelled_keeps_human_labels():
    proposal, labels = proposal_and_labels()
    origin, mask, values = tools.accept_proposal(proposal, labels, only_unlabelled=True)
    doc = LabelDocument(np.zeros((30, 40, 3), np.uint8), labels)
    doc.paint(origin, mask, values)
    assert (doc.labels[10:20, 10:20] == 1).all()
    assert (doc.labels[25:] == proposal[25:]).all()


def test_accept_proposal_in_a_region_crop_or_full_mask():
    proposal, labels = proposal_and_labels()
    crop = tools.polygon_mask(labels.shape, [(5, 5), (5, 25), (25, 25), (25, 5)])
    full = place(labels.shape, crop)
    for region in (crop, full):
        doc = LabelDocument(np.zeros((30, 40, 3), np.uint8), labels)
        doc.paint(*tools.accept_proposal(proposal, doc.labels, region))
        np.testing.assert_array_equal(doc.labels[full], proposal[full])
        np.testing.assert_array_equal(doc.labels[~full], labels[~full])
    same = LabelDocument(np.zeros((30, 40, 3), np.uint8), proposal)
    assert same.paint(*tools.accept_proposal(proposal, proposal)) is None  # nothing to change
    assert tools.accept_proposal(proposal, labels, np.zeros(labels.shape, bool)) is None


# ---- GrabCut -----------------------------------------------------------------------------------------

def disc_image(size=120):
    rng = np.random.default_rng(6)
    image = rng.integers(20, 60, (size, size, 3), dtype=np.uint8)
    cy, cx = centres((size, size))
    disc = (cy - 60) ** 2 + (cx - 55) ** 2 <= 25 ** 2
    image[disc] = rng.integers(190, 240, (int(disc.sum()), 3), dtype=np.uint8)
    return image, disc


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_grabcut_finds_the_object_in_the_box():
    cv2.setRNGSeed(0)
    image, disc = disc_image()
    got = place(disc.shape, tools.grabcut(image, (28, 22, 92, 88)))
    assert iou(got, disc) > 0.9
    assert not got[:28].any() and not got[92:].any()


def test_grabcut_respects_seeded_labels():
    cv2.setRNGSeed(0)
    image, disc = disc_image()
    labels = np.full(disc.shape, 255, np.uint8)
    labels[55:65, 30:40] = 2  # another class inside the object: certain background
    labels[50:52, 60:62] = 1
    got = place(disc.shape, tools.grabcut(image, (28, 22, 92, 88), labels, value=1))
    assert not got[55:65, 30:40].any()
    assert got[50:52, 60:62].all()
    assert iou(got, disc & (labels != 2)) > 0.85


def test_grabcut_downscales_large_boxes():
    cv2.setRNGSeed(0)
    image, disc = disc_image()
    got = place(disc.shape, tools.grabcut(image, (28, 22, 92, 88), max_side=40))
    assert iou(got, disc) > 0.85


def test_grabcut_needs_background():
    image, _ = disc_image()
    with pytest.raises(ValueError, match="background"):
        tools.grabcut(image, (0, 0, 120, 120))
