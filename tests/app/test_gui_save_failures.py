"""A folder that cannot be written, through the real window: the failure is known at once, the status
never says saved, the person gets a way out, the quit dialog tells the truth, nothing is dropped.

The failures are made at the system calls (EACCES, ENOSPC, EROFS for every file under the project
folder), so the tests run as root too."""

import errno
import os

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

import engine
from app.flows.quit_flow import QuitQuestions
from app.window.main_window import MainWindow
from tests.app.gui_helpers import make_project


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(QuitQuestions, "confirm_unsaved", lambda self: True)  # the quit dialog would block
    folder = make_project(tmp_path / "project", n=3)
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    qtbot.waitExposed(w)
    assert w.open_project(folder)
    return w


def stroke(qtbot, w, points):
    vp = w.canvas.viewport()
    pos = [w.canvas.mapFromScene(QPointF(x + 0.5, y + 0.5)) for y, x in points]
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=pos[0])
    for p in pos[1:]:
        qtbot.mouseMove(vp, p)
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=pos[-1])


def break_writes(monkeypatch, folder, code):
    """Every open-for-writing, replace and mkdir under `folder` fails with `code`."""
    real_open, real_replace, real_mkdir = os.open, os.replace, os.mkdir
    folder = str(folder)

    def under(path) -> bool:
        return str(os.fspath(path)).startswith(folder)

    def fake_open(path, flags, *args, **kwargs):
        if under(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args, **kwargs)

    def fake_replace(src, dst, *args, **kwargs):
        if under(dst):
            raise OSError(code, os.strerror(code), str(dst))
        return real_replace(src, dst, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if under(path):
            raise OSError(code, os.strerror(code), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "replace", fake_replace)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)


@pytest.mark.parametrize("code", [errno.EACCES, errno.ENOSPC, errno.EROFS])
def test_an_unwritable_folder_is_known_at_once_and_retry_writes_everything(window, qtbot, monkeypatch, code):
    w = window
    entry = w.editor.entry
    failures = []
    w.editor.saveFailed.connect(failures.append)
    break_writes(monkeypatch, w.project.folder, code)
    stroke(qtbot, w, [(10, 10), (10, 20)])
    # At once: no autosave, no waiting. The stroke is in memory only and the window says so.
    assert failures and os.strerror(code) in failures[-1] and "in memory only" in failures[-1]
    assert "saved" not in w.status_save.text().replace("not saved", "")
    assert w.project.journal.unwritten(entry.stem) == 1
    assert w._save_box is not None and w._save_box.isVisible()
    text = w.quitting.unsaved_text()
    assert "in memory only" in text and "recovery journal and come back" not in text
    qtbot.wait(1200)  # the autosave tries and fails too: still not saved, told once more at most
    assert "not saved" in w.status_save.text() and w.editor.doc.dirty
    w.open_image(1)  # switching keeps the document in memory
    assert "not saved" in w.status_save.text()
    w.open_image(0)
    assert (w.editor.doc.labels[10, 10:21] == 0).all()

    monkeypatch.undo()
    w._save_box.retry_button.click()
    assert w.editor.save_error is None and not w.editor.unsaved
    assert w.status_save.text() == "✓ saved"
    assert (engine.read_label(w.project.label_path(entry))[10, 10:21] == 0).all()
    assert w.project.journal.pending() == {}


def test_labels_fail_but_the_journal_holds_them_and_the_quit_dialog_says_so(window, qtbot, monkeypatch):
    import app.core.storage.label_store as project_module

    w = window

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(project_module, "write_label", disk_full)
    stroke(qtbot, w, [(12, 12), (12, 18)])
    assert not w.editor.save()
    text = w.quitting.unsaved_text()
    assert "recovery journal and come back" in text and "in memory only" not in text
    assert w.project.journal.stems() == [w.editor.entry.stem]


def test_save_to_another_folder_writes_labels_and_journal_there(window, qtbot, monkeypatch, tmp_path):
    w = window
    entry = w.editor.entry
    break_writes(monkeypatch, w.project.folder, errno.EROFS)
    stroke(qtbot, w, [(5, 5), (5, 15)])
    w.open_image(1)
    stroke(qtbot, w, [(20, 20), (20, 30)])
    assert w.editor.unsaved and len(w.editor.documents()) == 2
    other = tmp_path / "elsewhere"
    ok = w.editor.save_elsewhere(other)
    assert ok, (w.editor.save_error, w.project.saving.label_errors, w.project.journal.errors)
    assert not w.editor.unsaved and w.status_save.text() == "✓ saved"
    assert (engine.read_label(other / "labels" / f"{entry.stem}.png")[5, 5:16] == 0).all()
    second = w.project.images[1]
    assert (engine.read_label(other / "labels" / f"{second.stem}.png")[20, 20:31] == 0).all()
    assert (other / "segassist.json").is_file()
    assert not (w.project.folder / "labels" / f"{entry.stem}.png").exists()


def test_export_while_saving_fails_exports_the_edits_in_memory(window, qtbot, monkeypatch, tmp_path):
    w = window
    break_writes(monkeypatch, w.project.folder, errno.EACCES)
    stroke(qtbot, w, [(8, 8), (8, 14)])
    out = tmp_path / "export"
    job = w.transfer.export_labels(out)
    with qtbot.waitSignal(job.signals.finished, timeout=10000):
        pass
    labels = engine.read_label(out / f"{w.editor.entry.stem}.png")
    assert (labels[8, 8:15] == 0).all() and np.count_nonzero(labels != 255) >= 7
