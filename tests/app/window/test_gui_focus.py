"""Keyboard shortcuts work at once after a dialog closes: the window is active again and the canvas has the
keyboard (without a window manager nothing else would give it back)."""

import pytest
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtWidgets import QApplication

from app.widgets.cleanup_dialog import CleanupDialog
from app.window.main_window import MainWindow
from tests.app.gui_helpers import make_project


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    assert w.open_project(make_project(tmp_path / "p", n=2))
    w.activateWindow()
    return w


def paint(qtbot, w):
    vp = w.canvas.viewport()
    at = [w.canvas.mapFromScene(QPointF(x + 0.5, 10.5)) for x in (10, 20, 30)]
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=at[0])
    for p in at[1:]:
        qtbot.mouseMove(vp, p)
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=at[-1])
    assert w.editor.doc.can_undo


def undo_by_keyboard(qtbot, w):
    """Ctrl+Z as the person types it: to whatever has the keyboard now."""
    try:
        qtbot.waitUntil(lambda: QApplication.activeWindow() is w and QApplication.focusWidget() is not None,
                        timeout=5000)
    except Exception:
        visible = [t for t in QApplication.topLevelWidgets() if t.isVisible()]
        raise AssertionError(f"active {QApplication.activeWindow()}, focus {QApplication.focusWidget()}, "
                             f"modal {QApplication.activeModalWidget()}, visible {visible}") from None
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)


def test_ctrl_z_works_right_after_the_clean_up_dialog_closes(window, qtbot):
    w = window
    paint(qtbot, w)

    def close_dialog():
        shown = [d for d in w.findChildren(CleanupDialog) if d.isVisible()]
        if not shown:  # not up yet
            QTimer.singleShot(100, close_dialog)
            return
        shown[0].reject()

    QTimer.singleShot(200, close_dialog)
    w.acts.cleanup.trigger()  # modal until closed
    undo_by_keyboard(qtbot, w)
    assert QApplication.activeWindow() is w and QApplication.focusWidget() is w.canvas
    assert not w.editor.doc.can_undo and (w.editor.doc.labels == 255).all()


def test_the_keyboard_comes_back_after_a_message_box(window, qtbot):
    w = window
    paint(qtbot, w)
    box = w.inform("Something happened", "Read me")
    qtbot.waitUntil(box.isVisible, timeout=5000)
    box.button(box.StandardButton.Ok).click()
    undo_by_keyboard(qtbot, w)
    assert QApplication.focusWidget() is w.canvas and not w.editor.doc.can_undo
