"""The smart tools in the real window: superpixel painting, SAM clicks on a tiny random SAM 2, protection,
clean-up, the navigator and the shortcuts list, driven by real mouse events."""

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QGraphicsPixmapItem

from app.canvas.smart_interaction import SamTool, SuperpixelTool
from app.core.editing.protection import PaintGuard
from app.core.smart.cleanup import remove_islands
from app.widgets.shortcuts_dialog import shortcuts_html
from app.window.main_window import MainWindow
from tests.app.gui_helpers import make_project


@pytest.fixture
def window(qtbot, tmp_path):
    folder = make_project(tmp_path / "project", n=3)
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    assert w.open_project(folder)
    yield w
    w.smart.shutdown()


def view_point(canvas, y, x):
    return canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))


def test_superpixel_drag_paints_whole_superpixels_and_respects_protection(window, qtbot):
    w = window
    qtbot.waitUntil(lambda: len(w.smart.levels) == 3, timeout=20000)
    w.select_tool("S")
    assert isinstance(w.canvas.tool, SuperpixelTool)
    doc = w.editor.doc
    doc.paint((0, 0), np.ones((48, 4), bool), 0)
    w.smart_panel.over.setCurrentIndex(w.smart_panel.over.findData(255))  # paint only over unlabelled
    assert w.smart.guard == PaintGuard(frozenset(), 255) and doc.guard == w.smart.guard
    w.select_class(1)
    vp = w.canvas.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=view_point(w.canvas, 10, 2))
    qtbot.mouseMove(vp, view_point(w.canvas, 10, 30))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=view_point(w.canvas, 10, 30))
    level = w.smart.level()
    touched = level.ids_along((10.5, 2.5), (10.5, 30.5))
    expected = np.zeros(doc.shape, bool)
    for sp in touched:
        (y, x), m = level.mask(sp)
        expected[y:y + m.shape[0], x:x + m.shape[1]] |= m
    assert ((doc.labels == 1) == (expected & ~(np.arange(64) < 4)[None, :])).all()
    assert (doc.labels[:, :4] == 0).all()  # already labelled: not painted over
    w.editor.undo()
    assert not (doc.labels == 1).any()
    w.acts.boundaries.trigger()
    assert w.smart.show_boundaries and w.smart._boundary_item is not None


def test_sam_click_previews_and_enter_accepts_one_undo_step(window, qtbot, tmp_path):
    pytest.importorskip("sam2")
    from tests.engine.tiny_sam import OVERRIDES, write_tiny_checkpoint

    w = window
    path = write_tiny_checkpoint(tmp_path / "sam2.1_hiera_tiny.pt")
    with qtbot.waitSignal(w.smart.samChanged, timeout=30000, check_params_cb=lambda t: t == "SAM ready"):
        w.smart.load_sam(path, overrides=OVERRIDES)
    model = w.smart.sam
    assert w.smart_panel.sam_state.text() == "SAM ready"
    assert len(list((w.project.folder / ".segassist" / "sam" / model.key).glob("*.npz"))) >= 1
    w.select_tool("M")
    tool = w.canvas.tool
    assert isinstance(tool, SamTool)
    w.select_class(1)
    qtbot.mouseClick(w.canvas.viewport(), Qt.MouseButton.LeftButton, pos=view_point(w.canvas, 20, 30))
    qtbot.waitUntil(lambda: tool.prompt.result is not None, timeout=20000)  # decoded on SAM's thread
    assert tool.prompt.result.mask.shape == (48, 64)
    shown = [i for i in tool.preview_items if isinstance(i, QGraphicsPixmapItem)]  # the mask, drawn
    assert len(shown) == 1 and shown[0].pixmap().size().toTuple() == (64, 48)
    first = tool.prompt.result
    qtbot.mouseClick(w.canvas.viewport(), Qt.MouseButton.RightButton, pos=view_point(w.canvas, 2, 2))
    qtbot.waitUntil(lambda: tool.prompt.result is not first, timeout=20000)  # the refined mask
    assert tool.prompt.labels == [1, 0]
    mask = tool.prompt.result.mask
    before = w.editor.doc.labels.copy()
    qtbot.keyClick(w.canvas, Qt.Key.Key_Return)
    after = w.editor.doc.labels
    assert (after[mask] == 1).all() and (after[~mask] == before[~mask]).all()
    assert tool.prompt.empty and tool.preview_items == []  # the mask preview went with it
    w.editor.undo()
    assert (w.editor.doc.labels == before).all()


def test_cleanup_applies_to_the_open_image_as_one_undo_step(window):
    w = window
    doc = w.editor.doc
    doc.paint((0, 0), np.ones((48, 64), bool), 0)
    doc.paint((10, 10), np.ones((2, 2), bool), 1)
    assert w.smart.preview_cleanup(lambda lab: remove_islands(lab, 8)).count == 4
    assert w.smart.apply_cleanup(lambda lab: remove_islands(lab, 8)) == 4
    assert (doc.labels == 0).all()
    w.editor.undo()
    assert (doc.labels[10:12, 10:12] == 1).all()


def test_the_navigator_frames_the_view_and_moves_it(window, qtbot):
    w = window
    assert w.navigator.overview is not None and w.navigator.overview.shape == (48, 64)
    w.canvas.set_zoom(30.0)
    y0, x0, y1, x1 = w.navigator.visible_rect()
    assert (y1 - y0) < 48 and (x1 - x0) < 64
    nav = w.navigator
    nav.resize(256, 192)
    s, dx, dy = nav._placement()
    t = nav.overview.scale
    qtbot.mouseClick(nav, Qt.MouseButton.LeftButton, pos=QPointF(dx + 60 * t * s, dy + 40 * t * s).toPoint())
    y0, x0, y1, x1 = nav.visible_rect()
    assert abs((x0 + x1) / 2 - 60) < 2 and abs((y0 + y1) / 2 - 40) < 2


def test_the_shortcuts_list_names_the_smart_tools():
    html = shortcuts_html()
    for key in ("Shift+S", "Shift+U", "Ctrl+Shift+L", "<code>M</code>", "<code>S</code>"):
        assert key in html


def test_the_cleanup_dialog_previews_then_applies(window, qtbot):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.widgets.cleanup_dialog import CleanupDialog

    w = window
    doc = w.editor.doc
    doc.paint((0, 0), np.ones((48, 64), bool), 0)
    doc.paint((10, 10), np.ones((2, 2), bool), 1)
    seen = {}

    def drive():
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, CleanupDialog)
        dialog.op.setCurrentIndex(1)  # remove islands smaller than 64 px
        dialog.previewRequested.emit(dialog.operation())
        items = [i for i in w.canvas.scene().items() if isinstance(i, QGraphicsPixmapItem)]
        seen["preview"] = [(i.pos().x(), i.pos().y(), i.pixmap().width()) for i in items]
        seen["text"] = dialog.result.text()
        dialog.accept()

    QTimer.singleShot(0, drive)
    w.acts.cleanup.trigger()
    assert (10.0, 10.0, 2) in seen["preview"] and "4 pixels" in seen["text"]
    assert (doc.labels == 0).all()
    assert not [i for i in w.canvas.scene().items() if isinstance(i, QGraphicsPixmapItem)]
    w.editor.undo()
    assert (doc.labels[10:12, 10:12] == 1).all()
