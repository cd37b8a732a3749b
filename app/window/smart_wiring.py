"""Puts the smart tools into the main window: their panel, the navigator, actions, menus and signals."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QGraphicsPixmapItem

from app.canvas.interaction import mask_pixmap
from app.canvas.smart_interaction import SamTool
from app.widgets.cleanup_dialog import CleanupDialog
from app.widgets.navigator import Navigator
from app.widgets.smart_panel import SmartPanel
from app.window.actions import action


def install_smart_tools(w) -> None:
    """Add the Smart tools and Navigator docks, the actions (Shift+S, Shift+U, Ctrl+Shift+L) and connections."""
    smart, right = w.smart, Qt.DockWidgetArea.RightDockWidgetArea
    w.smart_panel = panel = SmartPanel()
    w.navigator = Navigator(w.canvas)
    w.smart_dock = w.add_dock("Smart tools", panel, right, "smart", scroll=True)
    w.navigator_dock = w.add_dock("Navigator", w.navigator, Qt.DockWidgetArea.LeftDockWidgetArea, "navigator")
    w.tabifyDockWidget(w.tool_dock, w.smart_dock)
    w.tool_dock.raise_()
    w.docks = (*w.docks, w.smart_dock, w.navigator_dock)

    def a(*args, **kwargs):
        return action(w, *args, **kwargs)

    acts = w.acts
    acts.boundaries = a("Superpixel boundaries", panel.boundaries.toggle, "Shift+S", None,
                        "Show or hide the superpixel boundaries", checkable=True)
    acts.refine_uncertain = a("Refine uncertain regions", smart.refine_uncertain, "Shift+U", None,
                              "Prompt Segment Anything from the proposal where the model's entropy is high")
    acts.load_sam = a("Load SAM 2 checkpoint…", lambda: ask_sam_checkpoint(w))
    acts.cleanup = a("Clean up labels…", lambda: ask_cleanup(w), "Ctrl+Shift+L", None,
                     "Fill holes, remove small islands or smooth boundaries, with a preview")
    w.menus.tools.addSeparator()
    for act in (acts.boundaries, acts.load_sam, acts.refine_uncertain, acts.cleanup):
        w.menus.tools.addAction(act)
    for dock in (w.smart_dock, w.navigator_dock):
        w.menus.view.addAction(dock.toggleViewAction())

    panel.guardChanged.connect(smart.set_guard)
    panel.scaleChanged.connect(smart.set_scale)
    panel.boundariesToggled.connect(smart.set_boundaries_visible)
    panel.boundariesToggled.connect(acts.boundaries.setChecked)
    panel.loadSamRequested.connect(acts.load_sam.trigger)
    panel.refineRequested.connect(smart.refine_uncertain)
    panel.cleanupRequested.connect(acts.cleanup.trigger)
    smart.message.connect(w.say)
    smart.samChanged.connect(panel.set_sam_state)
    smart.samChanged.connect(lambda text: _rerun_sam(w) if text == "SAM ready" else None)
    w.editor.documentChanged.connect(w.navigator.set_document)
    w.editor.documentChanged.connect(lambda _doc: _sync_classes(w))
    w.projectOpened.connect(lambda: _sync_classes(w))


def _sync_classes(w) -> None:
    names = [c.name for c in w.project.classes] if w.project is not None else []
    if names != w.smart_panel.names:
        w.smart_panel.set_classes(names)


def _rerun_sam(w) -> None:
    tool = w.canvas.tool
    if isinstance(tool, SamTool):
        tool.gesture.retry()


def ask_sam_checkpoint(w) -> None:
    last = w.smart.last_checkpoint
    start = str(last.parent) if last else str(Path.home())
    path, _ = QFileDialog.getOpenFileName(w, "Load a SAM 2 checkpoint", start,
                                          "SAM 2 checkpoints (sam2*_hiera_*.pt);;All files (*)")
    if path:
        w.smart.load_sam(path)


def ask_cleanup(w) -> None:
    if w.editor.doc is None:
        w.say("Open an image first")
        return
    names = [c.name for c in w.project.classes]
    dialog = CleanupDialog(names, w)
    preview: list[QGraphicsPixmapItem] = []

    def drop() -> None:
        for item in preview:
            if item.scene() is not None:
                item.scene().removeItem(item)
        preview.clear()

    def show(operation) -> None:
        drop()
        ch = w.smart.preview_cleanup(operation)
        dialog.show_count(None if ch is None else ch.count)
        if ch is not None:
            item = QGraphicsPixmapItem(mask_pixmap(ch.mask, (255, 0, 255, 200)))
            item.setPos(ch.region[1], ch.region[0])
            item.setZValue(70)
            preview.append(w.canvas.add_preview(item))

    dialog.previewRequested.connect(show)
    try:
        if dialog.exec():
            w.smart.apply_cleanup(dialog.operation(), all_images=dialog.all_images())
    finally:
        drop()
