"""The paint guard: every tool write through the document keeps protected classes and paint modes."""

import numpy as np
import pytest

from app.core.editing import tools
from app.core.editing.document import LabelDocument
from app.core.editing.protection import PaintGuard

U = 255


def make_doc():
    labels = np.array([[0, 0, 1, 1],
                       [0, U, U, 1],
                       [2, 2, U, 1]], np.uint8)
    return LabelDocument(np.zeros((3, 4, 3), np.uint8), labels)


def test_protected_classes_are_never_painted_or_erased():
    doc = make_doc()
    doc.guard = PaintGuard(protected=frozenset({1}))
    doc.paint((0, 0), np.ones((3, 4), bool), 2)
    np.testing.assert_array_equal(doc.labels, [[2, 2, 1, 1], [2, 2, 2, 1], [2, 2, 2, 1]])
    doc.paint((0, 0), np.ones((3, 4), bool), U)  # the eraser too
    np.testing.assert_array_equal(doc.labels, [[U, U, 1, 1], [U, U, U, 1], [U, U, U, 1]])


def test_paint_only_over_unlabelled_and_only_over_one_class():
    doc = make_doc()
    doc.guard = PaintGuard(only_over=U)
    doc.begin_stroke()  # a brush stroke across the whole middle row
    crop = tools.brush_segment(doc.shape, (1.5, 0.0), (1.5, 4.0), 0.5)
    doc.apply(crop[0], crop[1], 3)
    doc.end_stroke()
    np.testing.assert_array_equal(doc.labels[1], [0, 3, 3, 1])
    doc.paint((0, 0), np.ones((3, 4), bool), U)  # erasing is not limited by "only over"
    assert (doc.labels == U).all()
    doc.undo()
    doc.guard = PaintGuard(only_over=0)
    doc.paint(*tools.flood_fill(doc.labels, (0.5, 0.5)), 2)
    np.testing.assert_array_equal(doc.labels, [[2, 2, 1, 1], [2, 3, 3, 1], [2, 2, U, 1]])


def test_accept_proposal_values_respect_the_guard_and_replay_does_not():
    doc = make_doc()
    doc.set_proposal(np.full((3, 4), 2, np.uint8))
    doc.guard = PaintGuard(protected=frozenset({0, 1}))
    stroke = doc.paint(*tools.accept_proposal(doc.proposal, doc.labels, None))
    np.testing.assert_array_equal(doc.labels, [[0, 0, 1, 1], [0, 2, 2, 1], [2, 2, 2, 1]])
    fresh = make_doc()
    fresh.guard = PaintGuard(protected=frozenset({2}))  # journal replay writes what was recorded
    fresh.replay(stroke)
    np.testing.assert_array_equal(fresh.labels, doc.labels)
    doc.undo()
    np.testing.assert_array_equal(doc.labels, make_doc().labels)


def test_bad_guards_are_refused():
    with pytest.raises(ValueError, match="protected"):
        PaintGuard(protected=frozenset({255}))
    with pytest.raises(ValueError, match="only_over"):
        PaintGuard(only_over=300)
    assert PaintGuard().allowed(np.zeros(2, np.uint8), 1) is None
    assert "road" in PaintGuard(protected=frozenset({0})).describe(["road"])
