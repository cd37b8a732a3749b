"""The label document: paint atoms, strokes as undo steps, history memory, listeners, dirty state."""

import numpy as np
import pytest

from app.core.editing.document import IGNORE_INDEX, LabelDocument
from app.core.editing.tools import brush_segment


def make_doc(h=64, w=80, labels=None):
    rng = np.random.default_rng(0)
    return LabelDocument(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), labels)


def test_new_document_is_unlabelled_and_clean():
    doc = make_doc()
    assert doc.shape == (64, 80)
    assert doc.labels.dtype == np.uint8 and (doc.labels == IGNORE_INDEX).all()
    assert not doc.dirty and not doc.can_undo and not doc.can_redo
    assert doc.history_nbytes() == 0


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="image must be uint8"):
        LabelDocument(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="labels of shape"):
        make_doc(labels=np.zeros((3, 3), np.uint8))
    doc = make_doc()
    with pytest.raises(ValueError, match="proposal of shape"):
        doc.set_proposal(np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="outside 0-255"):
        doc.apply((0, 0), np.ones((2, 2), bool), 300)
    with pytest.raises(ValueError, match="values of shape"):
        doc.apply((0, 0), np.ones((2, 2), bool), np.zeros((3, 3), np.uint8))


def test_apply_writes_only_the_mask_clipped_to_the_image():
    doc = make_doc()
    mask = np.zeros((5, 5), bool)
    mask[1:4, 1:4] = True
    region = doc.apply((-2, 78), mask, 3)  # hangs over the top and right edges
    assert region == (0, 79, 2, 80)
    expected = np.full(doc.shape, IGNORE_INDEX, np.uint8)
    expected[0:2, 79] = 3
    np.testing.assert_array_equal(doc.labels, expected)
    assert doc.apply((100, 100), mask, 3) is None  # entirely outside
    assert doc.apply((-2, 78), mask, 3) is None  # nothing changes the second time


def test_a_stroke_of_overlapping_atoms_is_one_undo_step_and_undo_is_exact():
    rng = np.random.default_rng(1)
    start = rng.integers(0, 4, (64, 80), dtype=np.uint8)
    doc = make_doc(labels=start.copy())
    doc.begin_stroke()
    points = [(10.5, 10.5), (14.2, 20.7), (30.0, 22.0), (31.0, 50.3), (12.0, 48.0), (10.5, 12.0)]
    for value, (p0, p1) in zip([5, 6, 5, 255, 7], zip(points, points[1:], strict=False), strict=True):
        origin, mask = brush_segment(doc.shape, p0, p1, 6)
        doc.apply(origin, mask, value)
    stroke = doc.end_stroke()
    assert len(stroke.atoms) == 5
    painted = doc.labels.copy()
    assert (painted != start).any()
    assert doc.can_undo and doc.dirty
    region = doc.undo()
    np.testing.assert_array_equal(doc.labels, start)
    assert region == stroke.region
    assert doc.can_redo and not doc.can_undo
    doc.redo()
    np.testing.assert_array_equal(doc.labels, painted)


def test_array_values_write_the_proposal_values_and_undo():
    doc = make_doc()
    start = doc.labels.copy()
    values = np.arange(20, dtype=np.uint8).reshape(4, 5)
    mask = np.ones((4, 5), bool)
    mask[0, 0] = False
    doc.paint((2, 3), mask, values)
    np.testing.assert_array_equal(doc.labels[2:6, 3:8][mask], values[mask])
    assert doc.labels[2, 3] == IGNORE_INDEX
    doc.undo()
    np.testing.assert_array_equal(doc.labels, start)


def test_history_memory_grows_with_the_painted_area_not_the_image():
    small, large = make_doc(64, 64), make_doc(2048, 2048)
    for doc in (small, large):
        for i in range(20):
            origin, mask = brush_segment(doc.shape, (20.5, 10.5 + i), (20.5, 12.5 + i), 4)
            doc.paint(origin, mask, i % 3)
    assert small.history_nbytes() == large.history_nbytes()
    assert large.history_nbytes() < 5_000  # a full-image copy per step would be 20 x 4 MiB


def test_history_beyond_its_budget_drops_the_oldest_steps():
    doc = LabelDocument(np.zeros((100, 100, 3), np.uint8), max_history_bytes=4000)
    for i in range(10):
        doc.paint((i * 10, 0), np.ones((10, 100), bool), 1)
    assert doc.history_nbytes() <= 4000
    undone = 0
    while doc.can_undo:
        doc.undo()
        undone += 1
    assert 0 < undone < 10
    assert (doc.labels[:10] == 1).all()  # the dropped steps stay painted
    assert (doc.labels[-10:] == IGNORE_INDEX).all()
    assert doc.dirty


def test_new_stroke_clears_redo():
    doc = make_doc()
    doc.paint((0, 0), np.ones((3, 3), bool), 1)
    doc.undo()
    assert doc.can_redo
    doc.paint((5, 5), np.ones((3, 3), bool), 2)
    assert not doc.can_redo
    assert doc.redo() is None


def test_undo_closes_an_open_stroke_first():
    doc = make_doc()
    doc.begin_stroke()
    doc.apply((0, 0), np.ones((3, 3), bool), 1)
    assert doc.dirty and doc.can_undo
    doc.undo()
    assert (doc.labels == IGNORE_INDEX).all()
    assert not doc.in_stroke


def test_apply_outside_a_stroke_opens_one():
    doc = make_doc()
    doc.apply((0, 0), np.ones((3, 3), bool), 1)
    doc.apply((2, 2), np.ones((3, 3), bool), 2)
    stroke = doc.end_stroke()
    assert len(stroke.atoms) == 2
    doc.undo()
    assert (doc.labels == IGNORE_INDEX).all()


def test_listeners_get_the_changed_region():
    doc = make_doc()
    seen = []
    doc.listeners.append(seen.append)
    doc.apply((10, 20), np.ones((4, 6), bool), 1)
    doc.apply((12, 22), np.ones((4, 6), bool), 1)  # overlaps: only the new pixels changed
    doc.end_stroke()
    doc.undo()
    doc.set_proposal(np.zeros(doc.shape, np.uint8))
    assert seen == [(10, 20, 14, 26), (12, 22, 16, 28), (10, 20, 16, 28), (0, 0, 64, 80)]


def test_stroke_listeners_see_every_write_with_its_revision():
    doc = make_doc()
    seen = []
    doc.stroke_listeners.append(lambda stroke, rev: seen.append((rev, stroke)))
    first = doc.paint((0, 0), np.ones((2, 2), bool), 1)
    doc.undo()
    doc.redo()
    assert [rev for rev, _ in seen] == [1, 2, 3]
    assert seen[0][1] is first and seen[2][1] is first
    inverse = seen[1][1]
    assert inverse.atoms[0].new.tolist() == [IGNORE_INDEX] * 4
    assert doc.paint((0, 0), np.ones((2, 2), bool), 1) is None  # no change, no write
    assert len(seen) == 3


def test_dirty_follows_the_saved_state_through_undo_and_redo():
    doc = make_doc()
    doc.paint((0, 0), np.ones((2, 2), bool), 1)
    doc.mark_saved()
    assert not doc.dirty
    doc.paint((5, 5), np.ones((2, 2), bool), 2)
    assert doc.dirty
    doc.undo()
    assert not doc.dirty
    doc.undo()
    assert doc.dirty
    doc.redo()
    assert not doc.dirty


def test_snapshot_saves_a_past_state():
    doc = make_doc()
    doc.paint((0, 0), np.ones((2, 2), bool), 1)
    snap = doc.snapshot()
    doc.paint((5, 5), np.ones((2, 2), bool), 2)
    doc.mark_saved(snap.state)
    assert doc.dirty
    assert (snap.labels[5:7, 5:7] == IGNORE_INDEX).all()
    doc.undo()
    assert not doc.dirty


def test_proposal_maps_are_kept():
    doc = make_doc()
    proposal = np.ones(doc.shape, np.uint8)
    doc.set_proposal(proposal, np.full(doc.shape, 0.5, np.float32), np.zeros(doc.shape, np.float64))
    assert doc.proposal is proposal
    assert doc.entropy.dtype == np.float32
    doc.set_proposal(None)
    assert doc.proposal is None and doc.confidence is None


def test_no_value_outside_the_classes_is_ever_written():
    doc = LabelDocument(np.zeros((8, 8, 3), np.uint8), num_classes=2)
    mask = np.ones((2, 2), bool)
    with pytest.raises(ValueError, match="label value 6 is not a class"):
        doc.paint((0, 0), mask, 6)
    with pytest.raises(ValueError, match="not a class"):
        doc.paint((0, 0), mask, np.array([[0, 1], [2, 255]], np.uint8))
    assert (doc.labels == 255).all()
    assert doc.paint((0, 0), mask, 1) is not None and doc.paint((0, 0), mask, 255) is not None
    doc.num_classes = 3  # a class was added
    assert doc.paint((0, 0), mask, np.array([[0, 1], [2, 255]], np.uint8)) is not None
