"""The main window: builds the canvas, panels and services and wires their signals together.

The work happens elsewhere: editing in `Editor` and the tools (`app.canvas.interaction`), the model in
`ModelService` and `ModelFlow`, auto-segmenting in `AutoSegment`, training in `TrainingFlow`, class
edits in `ClassFlow`, label import and export in `TransferFlow`, opening a folder in `ProjectFlow`, the
questions before quitting in `QuitQuestions`, the project on disk in `app.core.storage.project`, the
actions and menus in `app.window.actions`, the smart tools' docks in `app.window.smart_wiring`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QActionGroup, QCloseEvent, QGuiApplication
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

import engine
from app.canvas.interaction import TOOLS
from app.canvas.smart_interaction import SMART_TOOLS
from app.canvas.view import HEAT_MODES, Canvas
from app.core.view.ui_state import Facts, enabled
from app.flows.class_flow import ClassFlow
from app.flows.label_transfer_flow import TransferFlow
from app.flows.model_flow import ModelFlow
from app.flows.project_flow import ProjectFlow
from app.flows.quit_flow import QuitQuestions
from app.flows.segmenting import AutoSegment
from app.flows.smart_tools import SmartTools
from app.flows.training_flow import TrainingFlow
from app.services.editor import Editor
from app.services.model_service import ModelService
from app.services.project_saver import ProjectSaver
from app.services.workers import JobRunner
from app.widgets.attention_panel import AttentionPanel
from app.widgets.classes_panel import ClassesPanel
from app.widgets.images_panel import ImagesPanel, entry_status
from app.widgets.model_panel import ModelPanel
from app.widgets.new_model_dialog import quick_backbone, suggested_backbones
from app.widgets.read_only_banner import ReadOnlyBanner
from app.widgets.save_failed_dialog import SaveFailedDialog
from app.widgets.tool_options import ToolOptions
from app.widgets.training_panel import TrainingPanel
from app.widgets.wheel_guard import WheelGuard
from app.window.actions import build_actions
from app.window.focus_return import FocusReturn
from app.window.smart_wiring import install_smart_tools

_gc = None  # the collector that keeps garbage collection on the GUI thread (see _collect_on_gui_thread)


def _collect_on_gui_thread() -> None:
    """Python's cyclic garbage collector may run in any thread that allocates, and a Qt wrapper freed by it on
    a worker thread (model loading, inference, saves) can crash the process; collect on a GUI-thread timer."""
    global _gc
    if _gc is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _gc = GarbageCollector(interval=1.0)


PREFERRED_SIZE = (1440, 900)
SCREEN_SHARE = 0.9  # of a larger screen's free area


def initial_size() -> tuple[int, int]:
    """1440x900, 90 % of a larger screen's free area (1728x950 or so on 1920x1080), or the free area where
    that is smaller (a 1280x800 laptop): never off the screen."""
    screen = QGuiApplication.primaryScreen()
    if screen is None:
        return PREFERRED_SIZE
    free = screen.availableGeometry()
    w = min(free.width(), max(PREFERRED_SIZE[0], round(free.width() * SCREEN_SHARE)))
    h = min(free.height(), max(PREFERRED_SIZE[1], round(free.height() * SCREEN_SHARE)))
    return w, h


class MainWindow(QMainWindow):
    """SegAssist's window. `open_project(folder)` and `open_model(path)` are what the command line calls."""

    projectOpened = Signal()
    predictionsDone = Signal()      # an auto-segment run ended (done, cancelled or failed)
    trainingFinished = Signal(bool)  # a training run ended: True when its model is loaded

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        _collect_on_gui_thread()
        self.setWindowTitle("SegAssist")
        self.resize(*initial_size())
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
        self.project = None
        self.last_warning: str | None = None
        self._save_box: SaveFailedDialog | None = None
        self.last_notice: str | None = None  # the last message box's text (warnings and notices)
        self.project_saver = ProjectSaver(self)
        self.project_saver.failed.connect(lambda why: self.say(why, 15000))

        self.canvas = Canvas(self)
        self.read_only_banner = ReadOnlyBanner()
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.read_only_banner)
        column.addWidget(self.canvas, 1)
        self.setCentralWidget(central)
        self.editor = Editor(self.canvas, self)
        self.models = ModelService(self)
        self.images_panel = ImagesPanel()
        self.classes_panel = ClassesPanel()
        self.tool_options = ToolOptions()
        self.model_panel = ModelPanel()
        self.training_panel = TrainingPanel()
        self.attention_panel = AttentionPanel()
        self._build_docks()
        self.model_flow = ModelFlow(self.editor, self.models, self, self)
        self.class_flow = ClassFlow(self.editor, self, self)
        self.segmenting = AutoSegment(self.editor, self.models, self.model_flow, self)
        self.training = TrainingFlow(self.editor, self.models, self.model_flow, self.training_panel, self)
        self.transfer = TransferFlow(self.editor, self, self)
        self.quitting = QuitQuestions(self.editor, self.training, self, self.ask_save_elsewhere)
        self.project_flow = ProjectFlow(self.editor, self.models, self.model_flow, self.training, self.quitting,
                                        self, self)
        self.smart = SmartTools(self.editor, self.canvas, self)
        self.tools = {cls.shortcut: cls(self.editor) for cls in TOOLS + SMART_TOOLS}
        self.acts = build_actions(self)
        install_smart_tools(self)
        self._build_status_bar()
        self._connect()
        self.focus_return = FocusReturn(self, self.canvas)
        archs = engine.list_architectures()
        self.training_panel.set_architectures(archs, {a: suggested_backbones(a) for a in archs},
                                              {a: quick_backbone(a) for a in archs})
        self.select_tool("B")
        self.update_enabled()

    # -- construction ---------------------------------------------------------------------------------
    def add_dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea, name: str,
                 scroll: bool = False) -> QDockWidget:
        """`widget` in a new dock of the window (in a scroll area when `scroll`); `name` is its object name."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        if scroll:  # tall panels scroll instead of forcing the window taller than the screen
            area_widget = QScrollArea()
            area_widget.setWidget(widget)
            area_widget.setWidgetResizable(True)
            area_widget.setFrameShape(QFrame.Shape.NoFrame)
            area_widget.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            WheelGuard(area_widget)  # the wheel scrolls the panel, not the setting under the pointer
            widget = area_widget
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self.images_dock = self.add_dock("Images", self.images_panel, left, "images")
        self.classes_dock = self.add_dock("Classes", self.classes_panel, left, "classes")
        self.tool_dock = self.add_dock("Tool and layers", self.tool_options, right, "tool", scroll=True)
        self.model_dock = self.add_dock("Model", self.model_panel, right, "model", scroll=True)
        self.training_dock = self.add_dock("Training", self.training_panel, right, "training", scroll=True)
        self.attention_dock = self.add_dock("Attention", self.attention_panel, right, "attention")
        self.splitDockWidget(self.tool_dock, self.model_dock, Qt.Orientation.Vertical)
        self.tabifyDockWidget(self.model_dock, self.training_dock)
        self.tabifyDockWidget(self.training_dock, self.attention_dock)
        self.model_dock.raise_()
        self.docks = (self.images_dock, self.classes_dock, self.tool_dock, self.model_dock, self.training_dock,
                      self.attention_dock)
        self._docks_sized = False

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._docks_sized:  # dock sizes only stick once the window has its size
            self._docks_sized = True
            h = max(self.height() - 120, 400)
            self.resizeDocks([self.images_dock, self.classes_dock], [int(h * 0.68), int(h * 0.32)],
                             Qt.Orientation.Vertical)
            self.resizeDocks([self.tool_dock, self.model_dock], [300, h - 300], Qt.Orientation.Vertical)
            self.resizeDocks([self.images_dock, self.tool_dock], [260, 340], Qt.Orientation.Horizontal)

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
        ed, canvas, mf = self.editor, self.canvas, self.model_flow
        ed.message.connect(self.say)
        ed.saveFailed.connect(self._on_save_failed)
        ed.saved.connect(lambda _: self._show_save_state())
        ed.historyChanged.connect(self.update_enabled)
        ed.historyChanged.connect(self._show_save_state)
        ed.entryChanged.connect(self.images_panel.update_entry)
        ed.documentChanged.connect(self._on_document)
        ed.explainRequested.connect(mf.explain_at)
        canvas.cursorMoved.connect(self._show_cursor)
        canvas.zoomChanged.connect(lambda z: self.status_zoom.setText(f"{z * 100:.0f}%"))

        ip = self.images_panel
        ip.activated.connect(self.open_image)
        ip.nextUncertain.connect(self.next_uncertain)
        ip.markReviewed.connect(self.mark_reviewed)
        cp = self.classes_panel
        cp.selected.connect(self._class_selected)
        cf = self.class_flow
        cp.addRequested.connect(cf.add)
        cp.renameRequested.connect(cf.rename)
        cp.recolorRequested.connect(cf.recolor)
        cp.deleteRequested.connect(cf.ask_delete)
        cp.moveRequested.connect(cf.ask_move)
        cf.message.connect(self.say)
        cf.warning.connect(self.warn)
        cf.classesChanged.connect(self._show_classes)
        cf.classChosen.connect(self.select_class)
        cf.reopen.connect(self.open_image)
        cf.enabledChanged.connect(self.update_enabled)
        to = self.tool_options
        to.brushRadiusChanged.connect(lambda r: setattr(self.editor, "brush_radius", r))
        to.labelOpacityChanged.connect(canvas.set_label_opacity)
        to.proposalVisibleChanged.connect(canvas.set_proposal_visible)
        to.proposalOpacityChanged.connect(canvas.set_proposal_opacity)
        to.heatModeChanged.connect(canvas.set_heat_mode)
        to.attentionOpacityChanged.connect(canvas.set_attention_opacity)
        mp = self.model_panel
        mp.newRequested.connect(mf.ask_new)
        mp.openRequested.connect(mf.ask_open)
        mp.importRequested.connect(mf.ask_import)
        mp.exportOnnxRequested.connect(mf.ask_export_onnx)
        mp.settingsChanged.connect(mf.settings_changed)
        mp.segmentCurrent.connect(self.segmenting.current)
        mp.segmentAll.connect(self.segmenting.all)
        mp.cancelRequested.connect(self.models.cancel)
        mp.versionChosen.connect(lambda path: mf.open(path))
        self.models.busyChanged.connect(lambda _: self.update_enabled())
        sg = self.segmenting
        sg.message.connect(self.say)
        sg.failed.connect(self.warn)
        sg.busy.connect(self.model_panel.set_busy)
        sg.predicted.connect(lambda i: (self.images_panel.update_entry(i), self.update_enabled()))
        sg.finished.connect(lambda _: (self.update_enabled(), self.predictionsDone.emit()))
        tp, tf = self.training_panel, self.training
        tp.startRequested.connect(tf.start)
        tp.settingsEdited.connect(self._remember_training_settings)
        self.read_only_banner.saveElsewhere.connect(self.ask_save_elsewhere)
        tp.stopRequested.connect(tf.stop)
        tf.finished.connect(self.trainingFinished)
        tf.message.connect(self.say)
        tf.warning.connect(self.warn)
        tf.runStarted.connect(self.training_dock.raise_)
        tf.validationChanged.connect(ip.set_validation)
        tf.segmentUnlabelled.connect(sg.unlabelled)
        ip.validationToggled.connect(tf.set_validation)
        self.projectOpened.connect(tf.refresh_loop)
        pf = self.project_flow
        pf.message.connect(self.say)
        pf.warning.connect(self.warn)
        pf.notice.connect(lambda title, text, warning: self.inform(title, text, warning=warning))
        pf.shown.connect(self._show_project)
        pf.recovered.connect(self.images_panel.refresh)
        pf.firstImage.connect(self.open_image)
        pf.opened.connect(lambda: (self.update_enabled(), self.projectOpened.emit()))
        lt = self.transfer
        lt.message.connect(self.say)
        lt.warning.connect(self.warn)
        lt.projectChanged.connect(self._project_changed)
        mf.message.connect(self.say)
        mf.failed.connect(self.warn)
        mf.modelShown.connect(self._show_model)
        mf.versionsChanged.connect(self.model_panel.set_versions)
        mf.classesChanged.connect(self._classes_changed)
        mf.attentionCleared.connect(self._clear_attention)
        mf.explaining.connect(lambda text: (self.attention_dock.raise_(), self.attention_panel.set_busy(text)))
        mf.explained.connect(self._show_explanation)
        mf.attentionShown.connect(lambda values, origin: canvas.set_attention(values, origin=origin))
        mf.fineTuneRequested.connect(self._fine_tune_copy)
        mf.enabledChanged.connect(self.update_enabled)
        ap = self.attention_panel
        ap.mapSelected.connect(mf.show_attention_map)
        ap.cleared.connect(lambda: (canvas.set_attention(None), canvas.set_marker(None)))

    # -- what the flows report -----------------------------------------------------------------------
    def _show_model(self, info: dict | None) -> None:
        """The active model in the Model panel and the status bar (None: no model)."""
        self.model_panel.set_model(info)
        self.status_model.setText(f"{info['name']} · {info['device']}" if info else "no model")
        self.training_panel.set_can_finetune(info is not None)

    def _classes_changed(self) -> None:
        self.editor.classes_changed()
        self._show_classes()

    def _show_classes(self) -> None:
        self.classes_panel.set_classes(self.project.classes)
        self.canvas.set_classes(self.project.classes)

    def _clear_attention(self) -> None:
        self.canvas.set_attention(None)
        self.canvas.set_marker(None)
        self.attention_panel.clear()

    def _show_explanation(self, maps: dict, crop, caption: str, pixel: tuple) -> None:
        self.canvas.set_marker(pixel)
        self.attention_panel.set_maps(maps, crop, caption)

    def _project_changed(self, reopen: int | None) -> None:
        """An import (or its undo) rewrote images, labels or classes: show them, reopen the image it closed."""
        self.images_panel.set_entries(self.project.images)
        self._show_classes()
        if reopen is not None:
            self.open_image(reopen)
        self.update_enabled()

    def _fine_tune_copy(self) -> None:
        self.training_dock.raise_()
        self.training.start({**self.training_panel.settings(), "mode": "finetune"})

    # -- feedback -------------------------------------------------------------------------------------
    def say(self, text: str, ms: int = 6000) -> None:
        self.statusBar().showMessage(text, ms)

    def warn(self, title: str, text: str) -> None:
        """A message box that does not block the caller (tests and --screenshot keep running)."""
        self.inform(title, text, warning=True)

    def inform(self, title: str, text: str, *, warning: bool = False) -> QMessageBox:
        """A message box that stays until read and does not block the caller."""
        self.say(text.splitlines()[0], 15000)
        icon = QMessageBox.Icon.Warning if warning else QMessageBox.Icon.Information
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        if warning:
            self.last_warning = text
        self.last_notice = text
        return box

    def update_enabled(self) -> None:
        """Apply `app.core.view.ui_state.enabled` to the actions and the model panel's buttons."""
        doc = self.editor.doc
        facts = Facts(project=self.project is not None, document=doc is not None,
                      can_undo=doc is not None and doc.can_undo, can_redo=doc is not None and doc.can_redo,
                      proposal=doc is not None and doc.proposal is not None, model=self.models.active is not None,
                      model_busy=self.models.busy, training=self.training.running,
                      import_to_undo=self.transfer.last_import() is not None, read_only=self.read_only)
        state = enabled(facts)
        edit, train = state.pop("edit"), state.pop("train")
        for name, on in state.items():
            getattr(self.acts, name).setEnabled(on)
        for key, act in self.acts.tools.items():  # the attention tool only reads
            act.setEnabled(edit or (key == "A" and facts.document))
        self.acts.save.setEnabled(not self.read_only)
        self.model_panel.segment_button.setEnabled(state["segment"])
        self.model_panel.segment_all_button.setEnabled(state["segment_all"])
        self.images_panel.review_button.setEnabled(state["reviewed"])
        self.classes_panel.set_editable(not self.read_only)
        for b in self.model_panel.writing_buttons:
            b.setEnabled(not self.read_only and facts.project)
        self.training_panel.set_trainable(train, running=self.training.running)

    @property
    def read_only(self) -> bool:
        """Whether nothing may be written (the project is open in another window and no other folder was
        chosen for the labels)."""
        p = self.project
        return p is not None and bool(p.read_only) and p.write_folder is None

    def _show_read_only(self) -> None:
        """The banner, the tools and the save state of a read-only project (or of a writable one)."""
        p = self.project
        if p is not None and p.read_only and p.write_folder is None:
            self.read_only_banner.show_read_only(p.read_only)
            if self.canvas.tool is not None and self.canvas.tool is not self.tools["A"]:
                self.canvas.set_tool(None)
                self.acts.tool_group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
                for act in self.acts.tools.values():
                    act.setChecked(False)
                self.tool_options.show_tool("Viewing only", "This project is read-only: zoom with the wheel, pan "
                                            "with the middle button or Space+drag. The attention tool (A) still "
                                            "explains the model.", False)
        else:
            if p is not None and p.read_only:
                self.read_only_banner.show_redirected(p.write_folder)
            else:
                self.read_only_banner.hide()
            if self.canvas.tool is None:
                self.acts.tool_group.setExclusionPolicy(QActionGroup.ExclusionPolicy.Exclusive)
                self.select_tool("B")
        self.update_enabled()
        self._show_save_state()

    def _show_save_state(self) -> None:
        if self.read_only:
            self.status_save.setText("<span style='color:#e0b84a'>read-only: nothing is saved</span>")
        elif self.editor.save_error:
            self.status_save.setText("<span style='color:#e5534b'>⚠ not saved</span>")
        elif self.editor.unsaved:
            self.status_save.setText("● editing")
        else:
            self.status_save.setText("✓ saved" if self.editor.doc is not None else "")

    def _on_save_failed(self, why: str) -> None:
        self._show_save_state()
        self.say(why.splitlines()[0], 15000)
        self.last_warning = why
        if self._save_box is None:
            self._save_box = SaveFailedDialog(self)
            self._save_box.retryRequested.connect(self.editor.retry)
            self._save_box.overwriteRequested.connect(lambda: self.editor.retry(force=True))
            self._save_box.elsewhereRequested.connect(self.ask_save_elsewhere)
            self._save_box.exportRequested.connect(self.transfer.ask_export_labels)
        self._save_box.show_problem(why)

    def ask_save_elsewhere(self) -> bool:
        """Choose a folder that labels, journal and project file are written to from now on."""
        folder = QFileDialog.getExistingDirectory(self, "Save labels to another folder", str(Path.home()))
        ok = bool(folder) and self.editor.save_elsewhere(folder)
        if ok:
            self._show_read_only()  # a read-only project can be edited now: its writes go there
        return ok

    def _show_cursor(self, pixel) -> None:
        doc = self.editor.doc
        if pixel is None or doc is None:
            self.status_cursor.setText("")
            return
        y, x = pixel
        names = [c.name for c in self.project.classes]

        def name(v: int) -> str:
            return "—" if v == 255 else names[v] if v < len(names) else f"class {v}"

        text = f"x {x}  y {y}  ·  {name(int(doc.labels[y, x]))}"
        if doc.proposal is not None:
            proposed = int(doc.proposal[y, x])
            if proposed == 255:  # the model left it out, or proposed a class the project does not have
                text += "  ·  no proposal"
            else:
                text += f"  ·  proposal {name(proposed)}"
                if doc.confidence is not None:
                    text += f" {doc.confidence[y, x] * 100:.0f}%"
        self.status_cursor.setText(text)

    # -- project and images ---------------------------------------------------------------------------
    def open_project(self, folder: str | Path) -> bool:
        """Open (or create) the project in `folder` (`ProjectFlow.open`: the questions, the recovery, the
        project's model); False when it was not opened."""
        return self.project_flow.open(folder)

    def _show_project(self, project) -> None:
        """The project the flow opened, on the panels; its model (if any) loads after."""
        self._show_model(None)  # until this project's own model (if any) has loaded
        self.project = project
        self.project_saver.attach(project)
        self.editor.set_project(project)
        self.setWindowTitle(f"{project.folder.name} — SegAssist" + (" (read-only)" if project.read_only else ""))
        self.training_panel.reset()  # the last project's run, curves and corrections
        self.training_panel.restore(project.settings.get("training") or {})
        self.training.show_project(project)
        self.images_panel.set_entries(project.images)
        self.classes_panel.set_classes(project.classes, self.editor.current_class)
        self.canvas.set_classes(project.classes)
        self.model_flow.refresh_versions()
        self._show_read_only()

    def _remember_training_settings(self) -> None:
        """The Training panel's settings belong to the project (segassist.json): restored when it opens."""
        project = self.project
        if project is None or self.read_only:
            return
        settings = self.training_panel.remembered()
        if project.settings.get("training") != settings:
            project.settings["training"] = settings
            self.editor.save_project(project.touch)

    def open_image(self, index: int) -> None:
        if self.project is None:
            return
        self.editor.open_image(index)
        self.images_panel.set_current(index)
        self.attention_panel.clear()
        self.update_enabled()
        self._show_save_state()

    def _on_document(self, doc) -> None:
        entry = self.editor.entry
        if doc is None:
            self.status_zoom.setText("")
        if doc is not None and entry is not None:
            h, w = doc.shape
            self.say(f"{entry.name}: {w} x {h}, {entry_status(entry)}" + (f"; {entry.note}" if entry.note else ""))
        self.update_enabled()

    def step_image(self, delta: int) -> None:
        """The next (or previous) image the filter shows."""
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
        """Open the not yet reviewed image whose proposal is least certain (highest mean entropy)."""
        if self.project is None:
            return
        images = self.project.images
        candidates = [e for i, e in enumerate(images) if e.status != "reviewed" and e.mean_entropy is not None
                      and i != self.editor.index]
        ranked = self.project.most_uncertain(candidates)
        if not ranked:
            self.say("No predicted image left to review: segment the images first (Ctrl+Shift+R)")
            return
        entry = ranked[0]
        self.open_image(images.index(entry))
        self.say(f"{entry.name}: mean entropy {entry.mean_entropy:.3f} (the least certain left)")

    def mark_reviewed(self) -> None:
        entry = self.editor.entry
        try:
            record = self.editor.mark_reviewed()
        except OSError as exc:
            self.warn("Project not saved", f"Could not write segassist.json: {exc}")
            return
        if record is None:
            return
        self.images_panel.update_entry(self.editor.index)
        changed = (f"{record.wrong_px} pixels changed in {record.regions} regions" if record.model
                   else "labelled by hand")
        self.say(f"{entry.name} marked reviewed: {changed}, {record.seconds:.0f} s")

    def open_model(self, path: str | Path) -> None:
        self.model_flow.open(path)

    # -- classes --------------------------------------------------------------------------------------
    def select_class(self, index: int) -> None:
        if self.project is not None and 0 <= index < len(self.project.classes):
            self.classes_panel.set_current(index)

    def _class_selected(self, index: int) -> None:
        self.editor.current_class = index
        if self.project is not None and index < len(self.project.classes):
            self.say(f"Painting {self.project.classes[index].name}", 2500)

    # -- tools and view -------------------------------------------------------------------------------
    def select_tool(self, key: str) -> None:
        tool = self.tools[key]
        self.acts.tools[key].setChecked(True)
        self.canvas.set_tool(tool)
        self.tool_options.show_tool(tool.title, tool.hint, tool.sized)

    def brush_step(self, direction: int) -> None:
        """A brush about 20 % larger or smaller (its diameter by at least one pixel)."""
        d = 2 * self.tool_options.brush_radius
        self.tool_options.set_brush_radius((d + direction * max(1, round(d * 0.2))) / 2)

    def cycle_heat(self) -> None:
        i = HEAT_MODES.index(self.tool_options.heat_mode())
        self.tool_options.set_heat_mode(HEAT_MODES[(i + 1) % len(HEAT_MODES)])

    # -- closing --------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if self._save_box is not None and self._save_box.isVisible():
            self._save_box.hide()  # the quit dialog says the same, and says what quitting costs: one dialog
        keep = self.quitting.ask()
        if keep is None:
            event.ignore()
            return
        if self.training.running:
            self.say("Stopping the training run and keeping the model so far…" if keep else
                     "Cancelling the training run…", 0)
        self.training.shutdown(keep)
        self.smart.shutdown()
        self.models.close()
        for runner in self.findChildren(JobRunner):  # nothing a job sends after this reaches the window's parts
            runner.close(10000)
        self.project_saver.flush()
        if self.project is not None:
            self.project.close()
        event.accept()
