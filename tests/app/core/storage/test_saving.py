"""Saving's one owner (`app.core.storage.saving.Saving`): journal, then label file, then project file, and every
failure kept and reported. Qt-free: the editor's timer and worker thread are not needed for the order."""

import errno
import json
import os

import numpy as np
import pytest

import app.core.storage.label_store as label_store
from app.core.editing.document import LabelDocument
from app.core.storage.project import Project
from engine.images import read_label, write_image


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(2):
        write_image(folder / f"img{i}.png", np.full((24, 32, 3), 60 * i, np.uint8))
    return Project.open(folder, classes=["sky", "tree"])


def paint(doc, y, value=1):
    return doc.paint((y, 0), np.ones((2, 8), bool), value)


def test_the_journal_has_each_write_before_the_follower_hears_of_it(project):
    entry = project.images[0]
    doc = project.load_document(entry)
    heard = []

    def follower(stroke, revision):
        heard.append((revision, [rev for rev, _ in project.journal.read(entry.stem)]))

    project.saving.follow(doc, follower)
    paint(doc, 0)
    paint(doc, 4)
    doc.undo()
    assert heard == [(1, [1]), (2, [1, 2]), (3, [1, 2, 3])]


def test_a_document_not_loaded_through_the_project_cannot_be_followed(project):
    doc = LabelDocument(np.zeros((24, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="not journaled"):
        project.saving.follow(doc, lambda stroke, revision: None)


def test_a_save_writes_the_journal_then_the_label_file_then_the_project_file(project, monkeypatch):
    entry = project.images[1]
    doc = project.load_document(entry)
    order = []
    real_record, real_write_label = project.journal.record, label_store.write_label
    real_clear, real_write = project.journal.clear, project.project_writer.write
    monkeypatch.setattr(project.journal, "record", lambda *a, **k: (order.append("journal"), real_record(*a, **k)))
    monkeypatch.setattr(label_store, "write_label",
                        lambda *a, **k: (order.append("label file"), real_write_label(*a, **k))[1])
    monkeypatch.setattr(project.journal, "clear",
                        lambda *a, **k: (order.append("journal cleared"), real_clear(*a, **k)))
    monkeypatch.setattr(project.project_writer, "write",
                        lambda *a, **k: (order.append("project file"), real_write(*a, **k))[1])
    paint(doc, 3)
    project.saving.save_document(entry, doc)
    assert order == ["journal", "label file", "journal cleared", "project file"]
    assert (read_label(project.label_path(entry))[3:5, :8] == 1).all() and not doc.dirty
    assert project.journal.stems() == []
    saved = json.loads(project.project_file.read_text())
    assert saved["images"][entry.name]["status"] == "edited"


def test_a_failed_label_write_keeps_the_edits_and_says_where_they_are(project, monkeypatch):
    entry = project.images[0]
    doc = project.load_document(entry)
    reports = []
    project.saving.on_report.append(reports.append)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(label_store, "write_label", disk_full)
    paint(doc, 0)
    assert not project.saving.save(entry, doc)
    assert reports == [True]  # one new problem
    assert "Could not save the labels of img0.png" in project.saving.error
    assert "in the recovery journal" in project.saving.error
    assert doc.dirty and project.journal.stems() == [entry.stem]
    assert project.saving.unsaved(doc) and project.saving.unsaved_report(entry, doc) == (["img0.png"], [])

    monkeypatch.undo()
    assert project.saving.save(entry, doc)
    assert project.saving.error is None and not project.saving.unsaved(doc)
    assert (read_label(project.label_path(entry))[0:2, :8] == 1).all()


def test_a_held_document_is_written_by_save_held(project, monkeypatch):
    entry = project.images[1]
    doc = project.load_document(entry)
    paint(doc, 6)
    pending = project.saving.start(entry, doc)
    assert project.saving.unsaved()  # a write under way
    project.saving.write_failed(pending, "No space left on device", hold=True)  # the person moved on meanwhile
    assert project.saving.documents() == {entry.stem: doc}
    assert project.saving.in_flight == 0 and project.saving.error
    paint(doc, 10)  # a held document is still journaled
    assert len(project.journal.read(entry.stem)) == 2
    assert project.saving.save_held()
    assert project.saving.documents() == {} and project.saving.error is None
    saved = read_label(project.label_path(entry))
    assert (saved[6:8, :8] == 1).all() and (saved[10:12, :8] == 1).all()
    assert project.journal.stems() == []


def test_a_project_file_that_cannot_be_written_leaves_the_labels_saved(project, monkeypatch):
    entry = project.images[0]
    doc = project.load_document(entry)
    paint(doc, 2)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(project.project_file))

    monkeypatch.setattr(project.project_writer, "write", read_only)
    assert project.saving.save(entry, doc)  # the labels are on disk
    assert not doc.dirty and (read_label(project.label_path(entry))[2:4, :8] == 1).all()
    assert "Could not save the project file" in project.saving.error
    monkeypatch.undo()
    project.saving.retry_project_file()
    assert project.saving.error is None
    assert json.loads(project.project_file.read_text())["images"][entry.name]["status"] == "edited"


def test_what_precedes_the_journal_runs_first_and_its_failure_keeps_the_write_out(project):
    entry = project.images[0]
    doc = project.load_document(entry)
    seen = []
    project.saving.precede(doc, lambda stroke, revision: seen.append(len(project.journal.read(entry.stem))))
    paint(doc, 0)
    paint(doc, 4)
    assert seen == [0, 1]  # each time, the journal did not have the write yet

    def broken(stroke, revision):
        raise OSError(errno.ENOSPC, "no room for the undo record")

    project.saving.precede(doc, broken)
    with pytest.raises(OSError, match="undo record"):
        paint(doc, 8)
    assert len(project.journal.read(entry.stem)) == 2
