"""Deleting and reordering classes: every label file and cached proposal follows, as one change."""

import numpy as np
import pytest

import engine
from app.core.storage import class_edit
from app.core.storage.class_edit import finish_pending, remap_table, reorder_classes
from app.core.storage.project import Project
from tests.app.gui_helpers import make_project


def three_class_project(tmp_path):
    folder = make_project(tmp_path / "p", n=3, labelled=2)
    project = Project.open(folder, ["background", "object", "sky"])
    labels = engine.read_label(project.label_path(project.images[0])).copy()
    labels[:2] = 2
    engine.write_label(project.label_path(project.images[0]), labels)
    project.save_prediction(project.images[2], np.full((48, 64), 1, np.uint8), model="m")
    return project


def test_remap_table_refuses_what_is_not_an_order():
    assert list(remap_table(3, [2, 0])[:3]) == [1, 255, 0]
    for bad in ([0, 0], [3], []):
        with pytest.raises(ValueError):
            remap_table(3, bad)


def test_delete_and_reorder_rewrite_labels_and_proposals(tmp_path):
    project = three_class_project(tmp_path)
    before = [engine.read_label(project.label_path(e)) for e in project.images[:2]]
    reorder_classes(project, [2, 1])  # delete background, sky first
    assert [c.name for c in project.classes] == ["sky", "object"]
    again = Project.open(project.folder)
    assert [c.name for c in again.classes] == ["sky", "object"]
    for old, entry in zip(before, again.images[:2], strict=True):
        new = engine.read_label(again.label_path(entry))
        np.testing.assert_array_equal(new[old == 2], 0)
        np.testing.assert_array_equal(new[old == 1], 1)
        np.testing.assert_array_equal(new[old == 0], 255)
    doc = again.load_document(again.images[2])
    assert (doc.proposal == 1).all()  # "object" kept its number here
    assert not list(again.labels_dir.glob(".*"))


def test_a_crash_after_the_commit_is_completed_at_the_next_open(tmp_path, monkeypatch):
    project = three_class_project(tmp_path)
    old = engine.read_label(project.label_path(project.images[0]))
    real_replace, calls = class_edit.os.replace, []

    def crash_on_second(src, dst):  # the second swap of a remapped label file in
        if str(src).endswith(class_edit.STAGED):
            calls.append(src)
            if len(calls) == 2:
                raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(class_edit.os, "replace", crash_on_second)
    with pytest.raises(OSError, match="power cut"):
        reorder_classes(project, [1, 0, 2])
    monkeypatch.undo()
    again = Project.open(project.folder)
    assert [c.name for c in again.classes] == ["background", "object", "sky"]  # not yet completed
    assert finish_pending(again)
    assert [c.name for c in again.classes] == ["object", "background", "sky"]
    new = engine.read_label(again.label_path(again.images[0]))
    np.testing.assert_array_equal(new[old == 0], 1)
    np.testing.assert_array_equal(new[old == 2], 2)
    assert not finish_pending(again) and not list(again.labels_dir.glob(".*"))


def test_a_failure_before_the_commit_changes_nothing(tmp_path, monkeypatch):
    project = three_class_project(tmp_path)
    old = engine.read_label(project.label_path(project.images[1]))

    def full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(class_edit, "atomic_write_bytes", full)
    with pytest.raises(OSError):
        reorder_classes(project, [1, 0, 2])
    assert [c.name for c in Project.open(project.folder).classes] == ["background", "object", "sky"]
    np.testing.assert_array_equal(engine.read_label(project.label_path(project.images[1])), old)
    assert not list(project.labels_dir.glob(".*"))
