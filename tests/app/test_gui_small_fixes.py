"""Smaller things a newcomer met: the brush size is its diameter, an unreadable image's reason names the
problem (never a buffer's repr), undoing every stroke leaves the image unlabelled, the export dialog says
classes.json only where one is written, "1 reviewed image", the validation set is known before the first
Train, a refused Train says why in the panel, and the window's first size follows the screen."""

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRect, Qt

from app.widgets.export_dialog import ExportDialog
from app.window.main_window import MainWindow, initial_size
from engine.classes import as_classes
from tests.app.gui_helpers import make_project


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    assert w.open_project(make_project(tmp_path / "p", n=2, size=(96, 128)))
    return w


def click(qtbot, w, y, x):
    qtbot.mouseClick(w.canvas.viewport(), Qt.MouseButton.LeftButton, pos=w.canvas.mapFromScene(QPointF(x, y)))


def test_the_brush_paints_as_wide_as_its_size_says(window, qtbot):
    w = window
    assert w.tool_options.size.value() == 24 and "diameter" in w.tool_options.size.toolTip()
    click(qtbot, w, 48, 64)
    painted = np.flatnonzero(w.editor.doc.labels[48] != 255)
    assert 23 <= painted.size <= 25  # 24 px across (one more when the centre falls on a pixel's middle)
    w.tool_options.size.setValue(10)
    w.editor.undo()
    click(qtbot, w, 48, 64)
    assert 9 <= np.flatnonzero(w.editor.doc.labels[48] != 255).size <= 11


def test_undoing_every_stroke_leaves_the_image_unlabelled(window, qtbot):
    w = window
    entry = w.editor.entry
    click(qtbot, w, 20, 20)
    assert w.editor.save() and entry.status == "edited" and w.project.label_path(entry).exists()
    w.editor.undo()
    assert w.editor.save()
    assert entry.status == "unlabelled" and not w.project.label_path(entry).exists()
    assert entry not in w.project.labelled()  # nothing to train on
    assert "unlabelled" in w.images_panel.list.item(0).toolTip()


def test_an_unreadable_image_names_the_problem_not_a_buffer(qtbot, tmp_path):
    folder = make_project(tmp_path / "p", n=1)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (folder / "notes.jpg").write_text("not a picture")
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.open_project(folder)
    for name in ("broken.png", "notes.jpg"):
        error = w.project.entry(name).error
        assert error.startswith("not a readable image: ") and "BytesIO" not in error and "0x" not in error, error
    assert "not an image format SegAssist can read, or the file is damaged" in w.project.entry("notes.jpg").error


@pytest.mark.parametrize("fmt, says", [("coco", "no classes.json"), ("yolo", "data.yaml"),
                                       ("labelme", "no classes.json"), ("palette", "(classes.json)"),
                                       ("voc", "(classes.json)")])
def test_the_export_dialog_says_classes_json_only_where_it_is_written(qtbot, fmt, says):
    dialog = ExportDialog(as_classes(["background", "car"]), {"reviewed": 1, "labelled": 1, "all": 2})
    qtbot.addWidget(dialog)
    dialog.format.setCurrentIndex(dialog.format.findData(fmt))
    assert says in dialog.table_title.text()


def test_one_reviewed_image_is_singular(window):
    spin = window.training_panel.auto_every
    spin.setValue(1)
    assert spin.suffix() == " reviewed image"
    spin.setValue(3)
    assert spin.suffix() == " reviewed images"


def test_the_validation_set_is_known_when_the_project_opens(qtbot, tmp_path):
    from app.core.storage.project import Project

    folder = make_project(tmp_path / "p", n=6, labelled=5)
    project = Project.open(folder)
    for e in project.images[:5]:
        project.set_status(e, "reviewed")
    project.close()
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.open_project(folder)  # never trained: the set is still what the next Train will use
    assert "not measurable" not in w.training_panel.validation.text()
    assert w.training_panel.validation.text() == f"{len(w.project.run_validation_names())} reviewed images"


def test_a_refused_train_says_why_in_the_panel(window, qtbot):
    w = window  # nothing labelled
    panel = w.training_panel
    panel.new.setChecked(True)
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert panel.result.isVisible() and panel.result.text() == "Nothing to train on"
    assert "Label at least one image" in panel.status.text() and panel.start_button.isEnabled()


class _Screen:
    def __init__(self, w, h):
        self.rect = QRect(0, 0, w, h)

    def availableGeometry(self):
        return self.rect


@pytest.mark.parametrize("free, size", [((1920, 1050), (1728, 945)), ((1280, 770), (1280, 770)),
                                        ((1440, 900), (1440, 900)), ((2560, 1400), (2304, 1260))])
def test_the_first_window_size_follows_the_screen(monkeypatch, free, size):
    from PySide6.QtGui import QGuiApplication

    monkeypatch.setattr(QGuiApplication, "primaryScreen", staticmethod(lambda: _Screen(*free)))
    assert initial_size() == size
