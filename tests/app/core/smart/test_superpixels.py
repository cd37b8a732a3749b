"""Superpixel levels mapped onto the image, their masks and boundaries, and painting whole superpixels."""

import numpy as np
import pytest

from app.core.editing.document import LabelDocument
from app.core.editing.protection import PaintGuard
from app.core.smart.superpixels import SuperpixelLevel, SuperpixelPainter, compute_levels, working_size

SEGMENTS = np.array([[0, 0, 1],
                     [2, 3, 1]], np.int32)


def level(shape=(4, 6)):
    return SuperpixelLevel(SEGMENTS, shape)  # each working pixel covers 2 x 2 image pixels


def test_masks_cover_the_image_once_at_full_resolution():
    lv = level()
    cover = np.zeros((4, 6), int)
    for sp in range(lv.n):
        (y, x), m = lv.mask(sp)
        cover[y:y + m.shape[0], x:x + m.shape[1]] += m
    assert (cover == 1).all()
    (y, x), m = lv.mask(1)
    assert (y, x) == (0, 4) and m.shape == (4, 2) and m.all()
    assert lv.id_at((3.5, 0.5)) == 2 and lv.id_at((9, 9)) is None
    assert lv.ids_along((0.5, 0.5), (3.5, 5.5)) == [0, 3, 1]


def test_boundaries_mark_where_the_superpixel_changes():
    edge = level().boundaries()
    expected = np.array([[0, 0, 0, 1, 0, 0],
                         [1, 1, 1, 1, 0, 0],
                         [0, 1, 0, 1, 0, 0],
                         [0, 1, 0, 1, 0, 0]], bool)
    np.testing.assert_array_equal(edge, expected)
    np.testing.assert_array_equal(level().boundaries((1, 1, 3, 4)), expected[1:3, 1:4])


def test_a_drag_paints_whole_superpixels_in_one_stroke_respecting_the_guard():
    doc = LabelDocument(np.zeros((4, 6, 3), np.uint8))
    doc.paint((2, 2), np.ones((2, 2), bool), 4)  # superpixel 3 holds class 4
    doc.guard = PaintGuard(protected=frozenset({4}))
    painter = SuperpixelPainter(doc, level())
    painter.press((0.5, 0.5), 7)
    painter.move((3.5, 2.5))  # over 0, 2 and 3
    stroke = painter.release()
    expected = np.full((4, 6), 255, np.uint8)
    expected[:2, :4] = 7
    expected[2:, :2] = 7
    expected[2:, 2:4] = 4
    np.testing.assert_array_equal(doc.labels, expected)
    assert stroke is not None
    doc.undo()
    assert (doc.labels[:2] == 255).all()
    with pytest.raises(ValueError, match="shape"):
        SuperpixelPainter(doc, level((8, 6)))


def test_slic_levels_on_a_synthetic_image_follow_its_edges_and_stop_when_asked():
    image = np.zeros((60, 80, 3), np.uint8)
    image[:, 40:] = (250, 30, 30)
    levels = compute_levels(image, (4, 16), max_pixels=1200)
    assert len(levels) == 2 and working_size((60, 80), 1200) == (30, 40)
    for lv in levels:
        assert lv.segments.shape == (30, 40) and lv.shape == (60, 80)
        for sp in range(lv.n):  # no superpixel crosses the colour edge
            (y, x), m = lv.mask(sp)
            cols = np.nonzero(m.any(axis=0))[0] + x
            assert cols.max() < 40 or cols.min() >= 40
    assert levels[1].n > levels[0].n
    fz = compute_levels(image, (8,), method="felzenszwalb")
    assert fz[0].segments.shape == (60, 80)
    done = []
    first = compute_levels(image, (4, 16), should_stop=lambda: len(done) >= 1, on_level=lambda i, lv: done.append(i))
    assert len(first) == 1 and done == [0]
    assert len(compute_levels(image, (4, 16), should_stop=lambda: True)) == 0
    with pytest.raises(ValueError, match="method"):
        compute_levels(image, (4,), method="watershed")
