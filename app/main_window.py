"""The main window: builds the canvas, panels, actions and services and wires their signals together.

The work happens elsewhere: editing in `Editor` and the tools, models in `ModelService`, training in
`TrainingProcess`, the project on disk in `app.core.project`. This file only connects them.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QToolBar,
    QWidget,
)

import engine
from app.canvas import HEAT_MODES, Canvas
from app.editor import Editor
from app.icons import icon
from app.interaction import TOOLS, Tool
from app.model_service import ActiveModel, ModelService
from app.training_process import TrainingProcess, TrainingSettings
from app.widgets.attention_panel import AttentionPanel
from app.widgets.classes_panel import ClassesPanel
from app.widgets.images_panel import ImagesPanel, entry_status
from app.widgets.model_panel import ModelPanel
from app.widgets.new_model_dialog import NewModelDialog, suggested_backbones
from app.widgets.shortcuts_dialog import ShortcutsDialog
from app.widgets.tool_options import ToolOptions
from app.widgets.training_panel import TrainingPanel
from app.workers import JobRunner

log = logging.getLogger(__name__)

TOOL_ICONS = {"B": "brush", "E": "eraser", "F": "fill", "P": "polygon", "R": "accept_region", "G": "grabcut",
              "A": "attention"}


class MainWindow(QMainWindow):
    """SegAssist's window. `open_project(folder)` and `open_model(path)` are what the command line calls."""

    projectOpened = Signal()
    predictionsDone = Signal()   # an auto-segment run ended (finished, cancelled or failed)
    trainingFinished = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("SegAssist")
        self.resize(1440, 900)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
        self.project = None
        self.training: TrainingProcess | None = None
        self._training_tmp: Path | None = None
        self._attention: tuple[dict, tuple] | None = None
        self._predict_job = None
        self.io_jobs = JobRunner(1, self)

        self.canvas = Canvas(self)
        self.setCentralWidget(self.canvas)
        self.editor = Editor(self.canvas, self)
        self.models = ModelService(self)

        self.images_panel = ImagesPanel()
        self.classes_panel = ClassesPanel()
        self.tool_options = ToolOptions()
        self.model_panel = ModelPanel()
        self.training_panel = TrainingPanel()
        self.attention_panel = AttentionPanel()
        self._build_docks()
        self.tools: dict[str, Tool] = {cls.shortcut: cls(self.editor) for cls in TOOLS}
        self._build_actions()
        self._build_status_bar()
        self._connect()
        self.training_panel.set_architectures(engine.list_architectures(),
                                               {a: suggested_backbones(a) for a in engine.list_architectures()})
        self.select_tool("B")
        self._update_enabled()

    # -- construction ---------------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea, name: str,
              scroll: bool = False) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        if scroll:  # tall panels scroll instead of forcing the window taller than the screen
            area_widget = QScrollArea()
            area_widget.setWidget(widget)
            area_widget.setWidgetResizable(True)
            area_widget.setFrameShape(QFrame.Shape.NoFrame)
            area_widget.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            widget = area_widget
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self.images_dock = self._dock("Images", self.images_panel, left, "images")
        self.classes_dock = self._dock("Classes", self.classes_panel, left, "classes")
        self.tool_dock = self._dock("Tool and layers", self.tool_options, right, "tool", scroll=True)
        self.model_dock = self._dock("Model", self.model_panel, right, "model", scroll=True)
        self.training_dock = self._dock("Training", self.training_panel, right, "training", scroll=True)
        self.attention_dock = self._dock("Attention", self.attention_panel, right, "attention")
        self.splitDockWidget(self.tool_dock, self.model_dock, Qt.Orientation.Vertical)
        self.tabifyDockWidget(self.model_dock, self.training_dock)
        self.tabifyDockWidget(self.training_dock, self.attention_dock)
        self.model_dock.raise_()
        self._docks_sized = False

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._docks_sized:  # dock sizes only stick once the window has its size
            self._docks_sized = True
            h = max(self.height() - 120, 400)
            self.resizeDocks([self.images_dock, self.classes_dock], [int(h * 0.68), int(h * 0.32)],
                             Qt.Orientation.Vertical)
            self.resizeDocks([self.tool_dock, self.model_dock], [330, h - 330], Qt.Orientation.Vertical)
            self.resizeDocks([self.images_dock, self.tool_dock], [260, 340], Qt.Orientation.Horizontal)

    def _action(self, text: str, slot, shortcut=None, icon_name: str | None = None, tip: str | None = None,
                checkable: bool = False) -> QAction:
        act = QAction(text, self)
        if icon_name:
            act.setIcon(icon(icon_name))
        if shortcut is not None:
            shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
            act.setShortcuts([QKeySequence(s) for s in shortcuts])
        keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in act.shortcuts())
        act.setToolTip(f"{tip or text.replace('…', '').replace('&', '')}" + (f"  [{keys}]" if keys else ""))
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        self.addAction(act)
        return act

    def _build_actions(self) -> None:
        a = self._action
        self.act_open = a("&Open folder…", self.ask_open_project, QKeySequence.StandardKey.Open, "open",
                          "Open a folder of images as a project")
        self.act_save = a("&Save labels", self.editor.save_all, QKeySequence.StandardKey.Save, "save")
        self.act_export_labels = a("Export labels…", self.ask_export_labels, None, None,
                                   "Write every labelled image as a palette PNG into a folder")
        self.act_export_onnx = a("Export model to ONNX…", self.ask_export_onnx)
        self.act_quit = a("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_undo = a("&Undo", self.editor.undo, QKeySequence.StandardKey.Undo, "undo", "Undo the last stroke")
        self.act_redo = a("&Redo", self.editor.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], "redo")
        self.act_accept = a("Accept proposal", self.editor.accept_proposal, "Shift+A", "accept",
                            "Accept the model's proposal wherever nothing is labelled yet")
        self.act_fit = a("Fit image", self.canvas.fit, "Ctrl+0", "fit")
        self.act_zoom_in = a("Zoom in", lambda: self.canvas.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn)
        self.act_zoom_out = a("Zoom out", lambda: self.canvas.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut)
        self.act_toggle_proposal = a("Show proposal", self.tool_options.show_proposal.toggle, "Shift+P")
        self.act_cycle_heat = a("Cycle heat map", self._cycle_heat, "H")
        self.act_segment = a("Segment image", self.segment_current, "Ctrl+R", "segment",
                             "Propose labels for the current image")
        self.act_segment_all = a("Segment all images", self.segment_all, "Ctrl+Shift+R", "segment_all",
                                 "Propose labels for every image")
        self.act_cancel = a("Cancel", self.models.cancel, None, "stop", "Cancel the running model job")
        self.act_new_model = a("New model…", self.ask_new_model)
        self.act_open_model = a("Open model…", self.ask_open_model)
        self.act_import_model = a("Import mmsegmentation checkpoint…", self.ask_import_model)
        self.act_next = a("Next image", lambda: self.step_image(1), "PgDown")
        self.act_prev = a("Previous image", lambda: self.step_image(-1), "PgUp")
        self.act_next_uncertain = a("Next uncertain image", self.next_uncertain, "N", "next")
        self.act_reviewed = a("Mark reviewed", self.mark_reviewed, "Ctrl+Return", "reviewed")
        self.act_help = a("Keyboard and mouse…", lambda: ShortcutsDialog(self).exec(), "F1", "help")
        self.act_smaller = a("Smaller brush", lambda: self._brush_step(-1), "[")
        self.act_larger = a("Larger brush", lambda: self._brush_step(1), "]")
        for i in range(9):
            a(f"Class {i + 1}", lambda _=False, i=i: self.select_class(i), str(i + 1))

        self.tool_group = QActionGroup(self)
        self.tool_actions: dict[str, QAction] = {}
        for key, tool in self.tools.items():
            act = a(tool.title, lambda _=False, k=key: self.select_tool(k), key, TOOL_ICONS[key],
                    f"{tool.title}: {tool.hint}", checkable=True)
            self.tool_group.addAction(act)
            self.tool_actions[key] = act

        bar = QToolBar("Main")
        bar.setObjectName("main-toolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        for act in (self.act_open, self.act_save):
            bar.addAction(act)
        bar.addSeparator()
        for act in self.tool_actions.values():
            bar.addAction(act)
        bar.addSeparator()
        for act in (self.act_undo, self.act_redo, self.act_fit):
            bar.addAction(act)
        bar.addSeparator()
        for act in (self.act_segment, self.act_segment_all, self.act_accept):
            bar.addAction(act)
        bar.addSeparator()
        for act in (self.act_next_uncertain, self.act_reviewed):
            bar.addAction(act)
        spacer = QWidget()
        spacer.setSizePolicy(spacer.sizePolicy().horizontalPolicy().Expanding,
                             spacer.sizePolicy().verticalPolicy().Preferred)
        bar.addWidget(spacer)
        bar.addAction(self.act_help)
        self.addToolBar(bar)

        mb = self.menuBar()
        m = mb.addMenu("&File")
        self._fill_menu(m, (self.act_open, self.act_save, None, self.act_export_labels, self.act_export_onnx, None,
                    self.act_quit))
        m = mb.addMenu("&Edit")
        self._fill_menu(m, (self.act_undo, self.act_redo, None, self.act_accept, self.act_reviewed))
        m = mb.addMenu("&View")
        self._fill_menu(m, (self.act_fit, self.act_zoom_in, self.act_zoom_out, None, self.act_toggle_proposal,
                    self.act_cycle_heat, None))
        for dock in (self.images_dock, self.classes_dock, self.tool_dock, self.model_dock, self.training_dock,
                     self.attention_dock):
            m.addAction(dock.toggleViewAction())
        m = mb.addMenu("&Tools")
        for act in self.tool_actions.values():
            m.addAction(act)
        m.addSeparator()
        m.addAction(self.act_smaller)
        m.addAction(self.act_larger)
        m = mb.addMenu("&Images")
        for act in (self.act_next, self.act_prev, self.act_next_uncertain, self.act_reviewed):
            m.addAction(act)
        m = mb.addMenu("&Model")
        self._fill_menu(m, (self.act_new_model, self.act_open_model, self.act_import_model, None, self.act_segment,
                    self.act_segment_all, self.act_cancel, None, self.act_export_onnx))
        m = mb.addMenu("&Help")
        m.addAction(self.act_help)

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.status_cursor = QLabel()
        self.status_zoom = QLabel()
        self.status_save = QLabel()
        self.status_model = QLabel("no model")
        for w in (self.status_cursor, self.status_zoom, self.status_save, self.status_model):
            sb.addPermanentWidget(w)
        sb.showMessage("Open a folder of images to begin (Ctrl+O)")

    def _connect(self) -> None:
        ed, canvas = self.editor, self.canvas
        ed.message.connect(self.say)
        ed.saveFailed.connect(self._on_save_failed)
        ed.saved.connect(lambda _: self._show_save_state())
        ed.historyChanged.connect(self._update_enabled)
        ed.historyChanged.connect(self._show_save_state)
        ed.entryChanged.connect(self.images_panel.update_entry)
        ed.documentChanged.connect(self._on_document)
        ed.explainRequested.connect(self.explain_at)
        canvas.cursorMoved.connect(self._show_cursor)
        canvas.zoomChanged.connect(lambda z: self.status_zoom.setText(f"{z * 100:.0f}%"))

        ip = self.images_panel
        ip.activated.connect(self.open_image)
        ip.nextUncertain.connect(self.next_uncertain)
        ip.markReviewed.connect(self.mark_reviewed)
        cp = self.classes_panel
        cp.selected.connect(self._class_selected)
        cp.addRequested.connect(self.add_class)
        cp.renameRequested.connect(self.rename_class)
        cp.recolorRequested.connect(self.recolor_class)
        to = self.tool_options
        to.brushRadiusChanged.connect(self._set_brush_radius)
        to.labelOpacityChanged.connect(canvas.set_label_opacity)
        to.proposalVisibleChanged.connect(canvas.set_proposal_visible)
        to.proposalOpacityChanged.connect(canvas.set_proposal_opacity)
        to.heatModeChanged.connect(canvas.set_heat_mode)
        to.attentionOpacityChanged.connect(canvas.set_attention_opacity)
        mp = self.model_panel
        mp.newRequested.connect(self.ask_new_model)
        mp.openRequested.connect(self.ask_open_model)
        mp.importRequested.connect(self.ask_import_model)
        mp.exportOnnxRequested.connect(self.ask_export_onnx)
        mp.settingsChanged.connect(self._model_settings_changed)
        mp.segmentCurrent.connect(self.segment_current)
        mp.segmentAll.connect(self.segment_all)
        mp.cancelRequested.connect(self.models.cancel)
        mp.versionChosen.connect(lambda path: self.open_model(path))
        self.models.changed.connect(self._on_model_changed)
        self.models.failed.connect(self._on_model_failed)
        self.models.busyChanged.connect(lambda _: self._update_enabled())
        tp = self.training_panel
        tp.startRequested.connect(self.start_training)
        tp.stopRequested.connect(self.stop_training)
        ap = self.attention_panel
        ap.mapSelected.connect(self._show_attention_map)
        ap.cleared.connect(lambda: (canvas.set_attention(None), canvas.set_marker(None)))

    # -- small helpers --------------------------------------------------------------------------------
    def say(self, text: str, ms: int = 6000) -> None:
        self.statusBar().showMessage(text, ms)

    def warn(self, title: str, text: str) -> None:
        """A message box that does not block the caller (tests and --screenshot keep running)."""
        self.say(text.splitlines()[0], 15000)
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.last_warning = text

    @staticmethod
    def _fill_menu(menu, actions) -> None:
        for act in actions:
            if act is None:
                menu.addSeparator()
            else:
                menu.addAction(act)

    def _update_enabled(self) -> None:
        doc = self.editor.doc
        has_doc = doc is not None
        has_model = self.models.active is not None
        self.act_undo.setEnabled(has_doc and doc.can_undo)
        self.act_redo.setEnabled(has_doc and doc.can_redo)
        self.act_accept.setEnabled(has_doc and doc.proposal is not None)
        self.act_segment.setEnabled(has_doc and has_model)
        self.act_segment_all.setEnabled(self.project is not None and has_model)
        self.act_cancel.setEnabled(self.models.busy)
        self.act_export_onnx.setEnabled(has_model)
        self.act_reviewed.setEnabled(has_doc)
        self.act_export_labels.setEnabled(self.project is not None)
        self.model_panel.segment_button.setEnabled(has_doc and has_model)
        self.model_panel.segment_all_button.setEnabled(self.project is not None and has_model)

    def _show_save_state(self) -> None:
        if self.editor.save_error:
            self.status_save.setText("<span style='color:#e5534b'>⚠ not saved</span>")
        elif self.editor.unsaved:
            self.status_save.setText("● editing")
        elif self.editor.doc is not None:
            self.status_save.setText("✓ saved")
        else:
            self.status_save.setText("")

    def _on_save_failed(self, why: str) -> None:
        self._show_save_state()
        self.warn("Labels not saved", why)

    def _show_cursor(self, pixel) -> None:
        doc = self.editor.doc
        if pixel is None or doc is None:
            self.status_cursor.setText("")
            return
        y, x = pixel
        names = [c.name for c in self.project.classes] if self.project is not None else []

        def name(v: int) -> str:
            return "—" if v == 255 else names[v] if v < len(names) else f"class {v}"

        text = f"x {x}  y {y}  ·  {name(int(doc.labels[y, x]))}"
        if doc.proposal is not None:
            text += f"  ·  proposal {name(int(doc.proposal[y, x]))}"
            if doc.confidence is not None:
                text += f" {doc.confidence[y, x] * 100:.0f}%"
        self.status_cursor.setText(text)

    # -- project --------------------------------------------------------------------------------------
    def ask_open_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", str(Path.home()))
        if folder:
            self.open_project(folder)

    def open_project(self, folder: str | Path) -> bool:
        """Open (or create) the project in `folder`, restore journalled edits, show the first image."""
        from app.core.project import Project, ProjectFileError

        self.editor.close_image()
        try:
            try:
                project = Project.open(folder)
            except ProjectFileError as exc:
                answer = QMessageBox.question(
                    self, "Broken project file",
                    f"{exc}\n\nStart a fresh project in this folder? The broken file is kept beside it "
                    "(renamed), your images and labels stay as they are.")
                if answer != QMessageBox.StandardButton.Yes:
                    return False
                project = Project.open(folder, start_fresh=True)
        except Exception as exc:  # noqa: BLE001 - any reason to refuse a folder is shown to the person
            self.warn("Cannot open the folder", f"{folder}: {exc}")
            return False
        self.project = project
        self.editor.set_project(project)
        self.setWindowTitle(f"{Path(project.folder).name} — SegAssist")
        self.images_panel.set_entries(project.images)
        self.classes_panel.set_classes(project.classes, 0)
        self.canvas.set_classes(project.classes)
        self._refresh_versions()
        restored = self._restore_journal()
        first = next((i for i, e in enumerate(project.images) if not e.error), None)
        if first is not None:
            self.open_image(first)
        n = len(project.images)
        msg = f"Opened {project.folder}: {n} image{'s' if n != 1 else ''}"
        if restored:
            msg += f"; restored unsaved edits of {restored} from the recovery journal"
        self.say(msg, 12000)
        if getattr(project, "current_model", None) and self.models.active is None:
            self.open_model(project.current_model, remember=False)
        self.training_panel.set_can_finetune(self.models.active is not None)
        self._update_enabled()
        self.projectOpened.emit()
        return True

    def _restore_journal(self) -> int:
        """Replay the recovery journal of every image that has one and save the result; returns how many
        images got edits back. A save that fails leaves the edits in the journal for next time."""
        project = self.project
        restored = 0
        problems = []
        for entry in project.pending_recovery():
            try:
                doc = project.load_document(entry)
                if doc.dirty:
                    project.save_document(entry, doc)
                    restored += 1
            except Exception as exc:  # noqa: BLE001 - report, keep the journal, go on with the rest
                problems.append(f"{entry.name}: {exc}")
            if entry.note and "could not be restored" in entry.note:
                problems.append(f"{entry.name}: {entry.note}")
        self.images_panel.refresh()
        if problems:
            self.warn("Recovery journal", "Some unsaved edits from an earlier session could not be restored:\n"
                      + "\n".join(problems))
        return restored

    def open_image(self, index: int) -> None:
        if self.project is None:
            return
        self.editor.open_image(index)
        self.images_panel.set_current(index)
        self.attention_panel.clear()
        self._update_enabled()
        self._show_save_state()

    def _on_document(self, doc) -> None:
        entry = self.editor.entry
        if doc is not None and entry is not None:
            h, w = doc.shape
            self.say(f"{entry.path.name}: {w} x {h}, {entry_status(entry)}")
        self._update_enabled()

    def step_image(self, delta: int) -> None:
        if self.project is None or not self.project.images:
            return
        n = len(self.project.images)
        i = self.editor.index if self.editor.index is not None else -delta
        for _ in range(n):
            i = (i + delta) % n
            if not self.images_panel.list.item(i).isHidden():
                self.open_image(i)
                return

    def next_uncertain(self) -> None:
        if self.project is None:
            return
        candidates = [e for e in self.project.images if not e.error and e.status != "reviewed"
                      and e.mean_entropy is not None and self.project.images.index(e) != self.editor.index]
        ranked = self.project.most_uncertain(candidates)
        if not ranked:
            self.say("No predicted image left to review: segment the images first (Ctrl+Shift+R)")
            return
        entry = ranked[0]
        self.open_image(self.project.images.index(entry))
        self.say(f"{entry.path.name}: mean entropy {entry.mean_entropy:.3f} (the least certain left)")

    def mark_reviewed(self) -> None:
        entry = self.editor.entry
        if entry is None:
            return
        if not self.editor.save():
            return
        self.project.set_status(entry, "reviewed")
        self._save_project()
        self.images_panel.update_entry(self.editor.index)
        self.say(f"{entry.path.name} marked reviewed")

    def _save_project(self) -> None:
        try:
            self.project.save()
        except OSError as exc:
            self.warn("Project not saved", f"Could not write {self.project.folder / 'segassist.json'}: {exc}")

    # -- classes --------------------------------------------------------------------------------------
    def select_class(self, index: int) -> None:
        if self.project is not None and 0 <= index < len(self.project.classes):
            self.classes_panel.set_current(index)

    def _class_selected(self, index: int) -> None:
        self.editor.current_class = index
        if self.project is not None and index < len(self.project.classes):
            self.say(f"Painting {self.project.classes[index].name}", 2500)

    def _classes_changed(self) -> None:
        self._save_project()
        self.classes_panel.set_classes(self.project.classes)
        self.canvas.set_classes(self.project.classes)

    def add_class(self, name: str) -> None:
        try:
            self.project.add_class(name)
        except ValueError as exc:
            self.warn("Class not added", str(exc))
            return
        self._classes_changed()
        self.select_class(len(self.project.classes) - 1)

    def rename_class(self, index: int, name: str) -> None:
        try:
            self.project.rename_class(index, name)
        except ValueError as exc:
            self.warn("Class not renamed", str(exc))
            return
        self._classes_changed()

    def recolor_class(self, index: int, color: tuple) -> None:
        self.project.recolor_class(index, tuple(color))
        self._classes_changed()

    # -- tools ----------------------------------------------------------------------------------------
    def select_tool(self, key: str) -> None:
        tool = self.tools[key]
        self.tool_actions[key].setChecked(True)
        self.canvas.set_tool(tool)
        self.tool_options.show_tool(f"{tool.title}", tool.hint, tool.sized)

    def _set_brush_radius(self, radius: int) -> None:
        self.editor.brush_radius = radius

    def _brush_step(self, direction: int) -> None:
        r = self.tool_options.brush_radius
        step = max(1, round(r * 0.2))
        self.tool_options.set_brush_radius(r + direction * step)

    def _cycle_heat(self) -> None:
        i = HEAT_MODES.index(self.tool_options.heat_mode())
        self.tool_options.set_heat_mode(HEAT_MODES[(i + 1) % len(HEAT_MODES)])

    # -- model ----------------------------------------------------------------------------------------
    def models_folder(self) -> Path:
        return Path(self.project.folder) / "models" if self.project is not None else Path.cwd()

    def _next_model_path(self, stem: str) -> Path:
        path = self.project.next_model_path(stem) if self.project is not None else Path(f"{stem}.safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def open_model(self, path: str | Path, remember: bool = True, then=None) -> None:
        """Load a model file in the background; the current model stays until it is ready."""
        path = Path(path)
        self.say(f"Loading {path.name}…", 0)

        def loaded(active: ActiveModel) -> None:
            if remember and self.project is not None:
                self._remember_model(path, active)
            if then is not None:
                then(active)

        self.models.load(path, on_loaded=loaded)

    def _remember_model(self, path: Path, active: ActiveModel) -> None:
        """Make `path` the project's current model (adding it to the versions when new)."""
        project = self.project
        try:
            if any(Path(v.path).resolve() == path.resolve() for v in project.models):
                project.set_current_model(path)
            else:
                cfg = active.loaded.model.config
                project.add_model_version(path, arch=cfg.get("name"), backbone=cfg.get("backbone"),
                                          miou=active.info().get("miou"))
        except OSError as exc:
            self.warn("Project not saved", f"Could not record the model in segassist.json: {exc}")
        self._refresh_versions()

    def _refresh_versions(self) -> None:
        if self.project is not None:
            self.model_panel.set_versions(self.project.models, getattr(self.project, "current_model", None))

    def _on_model_changed(self, active: ActiveModel) -> None:
        info = active.info()
        self.model_panel.set_model(info)
        self.status_model.setText(f"{info['name']} · {info['device']}")
        self.say(f"Model {info['name']} ready ({info['arch']}, {info['backbone']}, on {info['device']})")
        self.training_panel.set_can_finetune(True)
        if self.project is not None and len(active.classes) != len(self.project.classes):
            self.say(f"Note: the model has {len(active.classes)} classes, the project {len(self.project.classes)}",
                     15000)
        self._refresh_versions()
        self._update_enabled()

    def _on_model_failed(self, why: str) -> None:
        prev = self.models.active
        keep = f"\n\nThe model in use stays {prev.info()['name']}." if prev else ""
        self.warn("Model not loaded", why + keep)
        self._update_enabled()

    def _model_settings_changed(self, settings: dict) -> None:
        if self.models.set_options(settings) is not None:
            self.say("Preparing the model for the new settings…", 0)

    def ask_new_model(self) -> None:
        if self.project is None:
            self.say("Open a project first")
            return
        dialog = NewModelDialog(self.project.classes, self)
        if not dialog.exec():
            return
        v = dialog.values()
        self.new_model(v["arch"], v["backbone"], pretrained=v["pretrained"])

    def new_model(self, arch: str, backbone: str | None, pretrained=False, **options) -> None:
        path = self._next_model_path(arch)
        self.say(f"Creating a new {arch} model…", 0)
        self.models.create(arch, backbone, list(self.project.classes), path, pretrained=pretrained,
                           on_created=lambda active: self._remember_model(path, active), **options)

    def ask_open_model(self) -> None:
        start = str(self.models_folder())
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", start, "SegAssist models (*.safetensors)")
        if path:
            self.open_model(path)

    def ask_import_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import an mmsegmentation checkpoint", str(Path.home()),
                                              "Checkpoints (*.pth *.pt *.ckpt);;All files (*)")
        if not path:
            return
        source = Path(path)
        out = self._next_model_path(source.stem.split(".")[0][:40] or "imported")
        self.say(f"Importing {source.name}…", 0)
        self.models.import_mmseg(source, out, on_imported=lambda active: self._remember_model(out, active)
                                 if self.project is not None else None)

    def ask_export_onnx(self) -> None:
        active = self.models.active
        if active is None:
            return
        default = str((active.path or Path("model")).with_suffix(".onnx"))
        path, _ = QFileDialog.getSaveFileName(self, "Export the model to ONNX", default, "ONNX (*.onnx)")
        if not path:
            return
        self.say("Exporting to ONNX…", 0)
        self.models.export_onnx(Path(path), on_result=lambda p: self.say(f"Exported {p}"),
                                on_failed=lambda msg: self.warn("ONNX export failed", msg))

    # -- auto-segmenting ------------------------------------------------------------------------------
    def segment_current(self) -> None:
        if self.editor.doc is None:
            return
        self._segment([self.editor.index])

    def segment_all(self) -> None:
        if self.project is None:
            return
        order = [i for i, e in enumerate(self.project.images) if not e.error]
        if self.editor.index in order:  # the open image first
            order.remove(self.editor.index)
            order.insert(0, self.editor.index)
        self._segment(order)

    def segment_unlabelled(self) -> None:
        """Re-segment the images a person has not labelled (after training)."""
        if self.project is None:
            return
        order = [i for i, e in enumerate(self.project.images)
                 if not e.error and e.status in ("unlabelled", "predicted")]
        if order:
            self._segment(order)

    def _segment(self, indices: list[int]) -> None:
        if self.models.active is None or not indices:
            return
        if self._predict_job is not None:
            self.say("Already segmenting; cancel first to start again")
            return
        items = []
        project = self.project
        for i in indices:
            entry = project.images[i]
            if i == self.editor.index and self.editor.doc is not None:
                image = self.editor.doc.image
                items.append((i, lambda image=image: image))
            else:
                items.append((i, lambda path=entry.path: engine.read_image(path)))

        def cache(index: int, prediction) -> float | None:  # on the worker thread: the file half
            labels = prediction.labels.astype(np.uint8, copy=False)
            return project.write_prediction(project.images[index], labels, prediction.confidence,
                                            prediction.entropy, model=model_name)

        model_name = self.models.active.path.name if self.models.active.path else None
        started = time.perf_counter()
        self.model_panel.set_busy("Starting…", 0, len(items))

        def progress(done: int, total: int, text: str) -> None:
            self.model_panel.set_busy(text, done, total)
            self.say(text.capitalize() + "…", 0)

        def finished(outcome: str) -> None:
            self._predict_job = None
            self.model_panel.set_busy(None)
            self._save_project()
            self._update_enabled()
            self.say(f"Segmenting {outcome} ({time.perf_counter() - started:.1f} s)")
            self.predictionsDone.emit()

        self._predict_job = self.models.predict_images(
            items, after=cache, on_each=self._on_prediction, on_progress=progress,
            on_done=lambda n: finished(f"done: {n} image{'s' if n != 1 else ''}"),
            on_failed=lambda msg: (finished("failed"), self.warn("Segmentation failed", msg)),
            on_cancelled=lambda: finished("cancelled"))

    def _on_prediction(self, item) -> None:
        index, prediction, mean_entropy, error = item
        entry = self.project.images[index]
        if prediction is None:
            self.say(f"{entry.name}: {error}", 10000)
            return
        if error is not None:  # predicted, but the cache could not be written
            self.say(f"Could not cache the proposal of {entry.name}: {error}", 10000)
            mean_entropy = float(prediction.entropy.mean())
        self.project.record_prediction(entry, mean_entropy)
        labels = prediction.labels.astype(np.uint8, copy=False)
        self.editor.show_prediction(index, labels, prediction.confidence, prediction.entropy)
        self.images_panel.update_entry(index)
        self._update_enabled()

    # -- attention ------------------------------------------------------------------------------------
    def explain_at(self, pixel: tuple[int, int]) -> None:
        doc = self.editor.doc
        if doc is None:
            return
        if self.models.active is None:
            self.say("Attention needs a model: open or train one first")
            return
        self.attention_dock.raise_()
        self.attention_panel.set_busy(f"Explaining pixel x {pixel[1]}, y {pixel[0]}…")
        self.models.explain(doc.image, pixel, on_result=lambda r: self._show_explanation(doc, pixel, *r),
                            on_failed=lambda msg: self.attention_panel.set_busy(f"Could not explain: {msg}"))

    def _show_explanation(self, doc, pixel, maps: dict, region: tuple) -> None:
        if doc is not self.editor.doc:
            return
        import cv2

        y0, x0, y1, x1 = region
        fitted = {}
        for key, m in maps.items():
            if m.ndim != 2:
                continue
            if m.shape != (y1 - y0, x1 - x0):
                m = cv2.resize(m, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
            fitted[key] = m
        self._attention = (fitted, region)
        self.canvas.set_marker(pixel)
        names = [c.name for c in self.models.active.classes]
        cls = doc.proposal[pixel] if doc.proposal is not None else None
        what = f" (proposal: {names[cls]})" if cls is not None and cls < len(names) else ""
        self.attention_panel.set_maps(fitted, doc.image[y0:y1, x0:x1],
                                      f"Pixel x {pixel[1]}, y {pixel[0]}{what}: {len(fitted)} maps")

    def _show_attention_map(self, key: str) -> None:
        if self._attention is None or key not in self._attention[0]:
            return
        maps, (y0, x0, _, _) = self._attention
        self.canvas.set_attention(maps[key], origin=(y0, x0))

    # -- training -------------------------------------------------------------------------------------
    def start_training(self, settings: dict) -> None:
        if self.project is None or self.training is not None:
            return
        if not self.editor.save_all():
            self.warn("Training not started", "The current labels could not be saved; training reads them from "
                      "disk.")
            return
        labelled = self.project.labelled()
        if not labelled:
            self.warn("Nothing to train on", "Label at least one image first (paint, fill, or accept a proposal).")
            return
        active = self.models.active
        finetune = settings["mode"] == "finetune" and active is not None and active.path is not None
        arch = active.loaded.model.config["name"] if finetune else settings["arch"]
        fd, tmp = tempfile.mkstemp(prefix="segassist-classes-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"classes": [c.to_json() for c in self.project.classes]}, f)
        self._training_tmp = Path(tmp)
        out = self._next_model_path(arch)
        ts = TrainingSettings(
            images=Path(self.project.folder), labels=Path(self.project.folder) / "labels", classes=Path(tmp),
            out=out, init=active.path if finetune else None, arch=None if finetune else arch,
            backbone=None if finetune else settings.get("backbone"), crop=settings["crop"], batch=settings["batch"],
            iters=settings["iters"], lr=settings.get("lr"), device=settings["device"],
            precision=settings["precision"], val_fraction=settings["val_fraction"])
        args = ts.arguments() + ["--log-interval", str(max(1, settings["iters"] // 100))]
        if not finetune:
            args += [f"--option={o}" for o in settings.get("options") or ()]
        self.training = TrainingProcess(args, cwd=self.project.folder, parent=self)
        self._training_parent = active.path if finetune else None
        self.training.event.connect(self.training_panel.on_event)
        self.training.log.connect(self.training_panel.append_log)
        self.training.succeeded.connect(self._training_succeeded)
        self.training.failed.connect(self._training_failed)
        self.training.finished.connect(self._training_ended)
        self.training_panel.set_running(True)
        self.training_dock.raise_()
        self.say(f"Training {arch} on {len(labelled)} labelled images…", 0)
        self.training.start()

    def stop_training(self) -> None:
        if self.training is not None:
            self.training.stop()
            self.say("Stopping training after this iteration…", 0)

    def _training_succeeded(self, done: dict) -> None:
        path = Path(done.get("model_path") or "")
        self.training_panel.show_outcome(done)
        if not path.is_file():
            self._training_failed(f"the training process reported {path}, which does not exist")
            return
        miou = done.get("best_miou", done.get("last_miou"))
        try:
            self.project.add_model_version(path, miou=miou, select=False,
                                           parent=self._training_parent.name if self._training_parent else None)
        except Exception as exc:  # noqa: BLE001 - the model is on disk; the list is bookkeeping
            log.warning("cannot record model version %s: %s", path, exc)
        self._refresh_versions()
        self.say(f"Training done: {path.name}; loading it and re-segmenting the unlabelled images", 0)

        def loaded(active: ActiveModel) -> None:
            self.trainingFinished.emit(True)
            self.segment_unlabelled()

        self.open_model(path, then=loaded)

    def _training_failed(self, why: str) -> None:
        self.training_panel.show_outcome(None, why)
        prev = self.models.active
        self.warn("Training failed", why + (f"\n\nThe model in use stays {prev.info()['name']}." if prev else ""))
        self.trainingFinished.emit(False)

    def _training_ended(self) -> None:
        if self._training_tmp is not None:
            self._training_tmp.unlink(missing_ok=True)
            self._training_tmp = None
        self.training.deleteLater()
        self.training = None

    # -- export ---------------------------------------------------------------------------------------
    def ask_export_labels(self) -> None:
        if self.project is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Export labels to a folder", str(Path.home()))
        if folder:
            self.export_labels(Path(folder))

    def export_labels(self, folder: Path) -> None:
        """Every saved label map as a palette PNG coloured by the project's classes, in `folder`."""
        if not self.editor.save_all():
            return
        project = self.project
        pairs = [(project.label_path(e), folder / f"{e.stem}.png") for e in project.images
                 if project.label_path(e).exists()]
        classes = list(project.classes)

        def work(job):
            for i, (src, dst) in enumerate(pairs):
                job.check()
                engine.write_label(dst, engine.read_label(src), classes)
                job.progress(i + 1, len(pairs))
            return len(pairs)

        self.io_jobs.start("exporting labels", work,
                           on_result=lambda n: self.say(f"Exported {n} label maps to {folder}"),
                           on_failed=lambda msg: self.warn("Export failed", msg))

    # -- closing --------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.editor.save_all():
            answer = QMessageBox.question(
                self, "Labels not saved",
                "Some labels could not be saved. They are in the recovery journal and will be restored the next "
                "time you open this folder.\n\nQuit anyway?")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        if self.training is not None:
            self.training.stop()
            self.training.wait(10000)
        self.models.cancel()
        self.models.runner.wait(10000)
        self.editor.grabcut_jobs.wait(10000)
        self.io_jobs.wait(10000)
        QSettings("SegAssist", "SegAssist").setValue("geometry", self.saveGeometry())
        event.accept()

