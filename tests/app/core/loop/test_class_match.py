"""Model classes against project classes, by name."""

import numpy as np

from app.core.loop.class_match import match_classes, relabel
from engine import SegClass


def test_same_classes_keep_their_indices_and_extra_model_classes_are_hidden():
    m = match_classes([SegClass("Background", (0, 0, 0)), SegClass("road", (1, 1, 1))], ["background ", "road"])
    assert m.same and m.only_in_model == [] and m.only_in_project == []
    labels = np.array([[0, 1], [2, 1]], np.uint8)
    assert (relabel(labels, m.by_index()) == [[0, 1], [255, 1]]).all()


def test_differing_classes_map_by_name_and_say_how_they_differ():
    m = match_classes(["sky", "road", "car", "tree"], ["road", "car", "person"])
    assert not m.same
    assert m.only_in_model == ["sky", "tree"] and m.only_in_project == ["person"]
    labels = np.array([[0, 1, 2, 3]], np.uint16)
    assert (relabel(labels, m.by_name()) == [[255, 0, 1, 255]]).all()
    assert relabel(np.array([[300]], np.uint16), m.by_name())[0, 0] == 255
    text = m.describe()
    assert "Only in the model: sky, tree." in text and "Only in the project: person." in text


def test_same_names_in_another_order_are_not_the_same():
    m = match_classes(["a", "b"], ["b", "a"])
    assert not m.same and "another order" in m.describe()
    assert list(m.by_name()[:2]) == [1, 0]
