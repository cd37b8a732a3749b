"""File → Export… and Import labels… through their dialogs, off the GUI thread; an import undone as a whole."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.core.storage.project import Project
from app.window.main_window import MainWindow
from engine.images import read_label
from tests.app.gui_helpers import make_project


@pytest.fixture
def window(qtbot):
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1100, 700)
    w.show()
    qtbot.waitExposed(w)
    return w


def _click(qtbot, button):
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_export_then_import_with_a_changed_mapping_and_undo(window, qtbot, tmp_path):
    w = window
    src = make_project(tmp_path / "src", n=3, labelled=2)
    assert w.open_project(src)
    dialog = w.transfer.ask_export()
    assert dialog.table.rowCount() == len(w.project.classes) + 1
    dialog.format.setCurrentText("coco")
    assert dialog.polygons.isEnabled() and "Exact" in dialog.note.text()
    dialog.out.setText(str(tmp_path / "coco"))
    with qtbot.waitSignal(w.transfer.finished, timeout=20000) as done:
        _click(qtbot, dialog.export_button)
    assert "Exported 2 images" in done.args[0]
    coco = tmp_path / "coco" / "annotations" / "instances_train.json"
    assert coco.exists()
    truth = {s: read_label(src / "labels" / f"{s}.png") for s in ("img00", "img01")}

    dst = make_project(tmp_path / "dst", n=3)
    assert w.open_project(dst)
    assert not w.acts.undo_import.isEnabled()
    dialog = w.transfer.ask_import()
    dialog.format.setCurrentText("coco")
    dialog.source.setText(str(coco))
    _click(qtbot, dialog.check_button)
    qtbot.waitUntil(lambda: dialog.table.rowCount() > 0 and not dialog.busy, timeout=20000)
    names = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    assert set(names) <= {c.name for c in w.project.classes}
    assert not any(w.project.label_path(e).exists() for e in w.project.images)  # checking writes nothing
    drop = names.index("background")
    dialog.table.cellWidget(drop, 1).setCurrentText("drop (not labelled, 255)")
    with qtbot.waitSignal(w.transfer.finished, timeout=20000) as done:
        _click(qtbot, dialog.import_button)
    assert "Imported the labels of 2 images" in done.args[0]
    for stem, labels in truth.items():
        got = read_label(w.project.label_path(w.project.entry(stem)))
        np.testing.assert_array_equal(got, np.where(labels == 0, 255, labels))
    assert w.editor.doc is not None and w.editor.entry.stem == "img00"
    np.testing.assert_array_equal(w.editor.doc.labels, np.where(truth["img00"] == 0, 255, truth["img00"]))
    assert w.project.entry("img00").status == "edited"
    assert w.acts.undo_import.isEnabled()

    with qtbot.waitSignal(w.transfer.finished, timeout=20000) as done:
        w.acts.undo_import.trigger()
    assert "Undid the import of 2 images" in done.args[0]
    assert (w.editor.doc.labels == 255).all()
    reopened = Project.open(dst)
    # the images had no labels before the import: after its undo they have no label file again
    assert not any(reopened.label_path(reopened.entry(s)).exists() for s in truth)
    assert all(reopened.entry(s).status == "unlabelled" for s in truth)
    assert not w.acts.undo_import.isEnabled()


def test_bad_input_is_shown_in_the_dialog_and_nothing_is_written(window, qtbot, tmp_path):
    w = window
    dst = make_project(tmp_path / "dst", n=2)
    assert w.open_project(dst)
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "img00.json").write_text('{"shapes": 3}')
    dialog = w.transfer.ask_import()
    dialog.format.setCurrentText("labelme")
    dialog.source.setText(str(tmp_path / "lm"))
    with qtbot.waitSignal(w.transfer.finished, timeout=20000) as done:
        _click(qtbot, dialog.check_button)
    assert "img00.json: not a labelme file" in done.args[0] and "img00.json" in dialog.summary.text()
    assert not dialog.import_button.isEnabled()
    assert not any(w.project.label_path(e).exists() for e in w.project.images)
