"""Clean-up operations on small label maps with exact expected results, and their undo step."""

import numpy as np
import pytest

from app.core.editing.document import LabelDocument
from app.core.editing.protection import PaintGuard
from app.core.smart import cleanup

U = 255


def arr(rows):
    return np.array(rows, np.uint8)


def doc_with(labels):
    return LabelDocument(np.zeros(labels.shape + (3,), np.uint8), labels)


def test_fill_holes_fills_unlabelled_gaps_the_class_encloses():
    labels = arr([[1, 1, 1, 1, U],
                  [1, U, U, 1, U],
                  [1, 1, 1, 1, U],
                  [2, 2, U, 2, 2],
                  [2, U, 2, 2, 2]])
    # the gap in class 1 is filled; the top-right column touches the edge; the gap in class 2 at
    # (3, 2) is open to nothing but class 1 and 2 around it, so it is no hole of either
    expected = arr([[1, 1, 1, 1, U],
                    [1, 1, 1, 1, U],
                    [1, 1, 1, 1, U],
                    [2, 2, U, 2, 2],
                    [2, U, 2, 2, 2]])
    np.testing.assert_array_equal(cleanup.fill_holes(labels), expected)


def test_fill_holes_leaves_labelled_enclosures_unless_asked_and_respects_max_area():
    labels = arr([[0, 0, 0, 0, 0, 0],
                  [0, 3, 0, U, U, 0],
                  [0, 0, 0, U, U, 0],
                  [0, 0, 0, 0, 0, 0]])
    only_gaps = cleanup.fill_holes(labels)
    assert (only_gaps[1:3, 3:5] == 0).all() and only_gaps[1, 1] == 3
    small = cleanup.fill_holes(labels, max_area=3, only_unlabelled=False)
    assert small[1, 1] == 0 and (small[1:3, 3:5] == U).all()  # the 4-pixel gap is over the limit
    assert (cleanup.fill_holes(labels, only_unlabelled=False) == 0).all()
    assert (cleanup.fill_holes(labels, classes=[3]) == labels).all()


def test_remove_islands_takes_the_label_around_them():
    labels = arr([[0, 0, 0, 0, U, U],
                  [0, 1, 0, 0, U, 2],
                  [0, 0, 0, 0, U, U],
                  [1, 1, 1, 1, 1, 1]])
    expected = arr([[0, 0, 0, 0, U, U],
                    [0, 0, 0, 0, U, U],
                    [0, 0, 0, 0, U, U],
                    [1, 1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(cleanup.remove_islands(labels, 2), expected)
    only_2 = cleanup.remove_islands(labels, 2, classes=[2])
    assert only_2[1, 1] == 1 and only_2[1, 5] == U
    assert (cleanup.remove_islands(labels, 1) == labels).all()  # nothing smaller than one pixel


def test_smooth_is_a_majority_filter_that_keeps_ties():
    labels = np.zeros((7, 7), np.uint8)
    labels[:, 4:] = 1
    labels[3, 3] = 1  # a one-pixel spur of class 1 into class 0
    labels[0, 0] = 2  # a lone pixel of class 2 in the corner
    expected = np.zeros((7, 7), np.uint8)
    expected[:, 4:] = 1
    np.testing.assert_array_equal(cleanup.smooth(labels, radius=1), expected)
    only_2 = cleanup.smooth(labels, radius=1, classes=[2])
    assert only_2[0, 0] == 0 and only_2[3, 3] == 1
    straight = np.zeros((6, 6), np.uint8)
    straight[:, 3:] = 1
    np.testing.assert_array_equal(cleanup.smooth(straight, radius=2), straight)
    with pytest.raises(ValueError, match="radius"):
        cleanup.smooth(labels, radius=0)


def test_change_is_the_preview_and_one_undo_step_and_respects_the_guard():
    labels = arr([[1, 1, 1, 1],
                  [1, U, 2, 1],
                  [1, 1, 1, 1]])
    new = cleanup.fill_holes(labels, only_unlabelled=False)
    ch = cleanup.change(labels, new)
    assert ch.region == (1, 1, 2, 3) and ch.count == 2
    np.testing.assert_array_equal(ch.full_mask(labels.shape), new != labels)
    guarded = cleanup.change(labels, new, PaintGuard(protected=frozenset({2})))
    assert guarded.count == 1 and guarded.region == (1, 1, 2, 2)
    doc = doc_with(labels)
    doc.guard = PaintGuard(protected=frozenset({2}))
    cleanup.apply_change(doc, ch)  # the document applies its guard as well
    np.testing.assert_array_equal(doc.labels[1], [1, 1, 2, 1])
    doc.undo()
    np.testing.assert_array_equal(doc.labels, labels)
    assert not doc.can_undo
    assert cleanup.change(labels, labels) is None


def test_clean_images_writes_each_saved_label_file(tmp_path):
    from PIL import Image

    from app.core.storage.project import Project

    for name in ("a", "b"):
        Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(tmp_path / f"{name}.png")
    project = Project.open(tmp_path, ["road", "car"])
    entry = project.entry("a.png")
    doc = project.load_document(entry)
    doc.paint((0, 0), np.ones((6, 6), bool), 0)
    doc.paint((2, 2), np.ones((1, 1), bool), 1)
    project.save_document(entry, doc)
    results = list(cleanup.clean_images(project, project.images, lambda lab: cleanup.remove_islands(lab, 2)))
    assert [(e.name, n) for e, n in results] == [("a.png", 1)]  # b has no label file
    assert (project.load_document(entry).labels == 0).all()
