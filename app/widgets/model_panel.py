"""The model panel: which model proposes labels, how it runs, auto-segmenting, and its versions."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.loop.loop_record import score_text
from app.core.storage.predictions import PROPOSAL_OPTIONS
from app.widgets.icons import icon
from engine.backbones import describe_origin

DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("torch", "onnx")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PATH_ROLE = Qt.ItemDataRole.UserRole


def _combo(values: Sequence[str], tip: str) -> QComboBox:
    c = QComboBox()
    c.addItems(list(values))
    c.setToolTip(tip)
    return c


class ModelPanel(QWidget):
    """Shows the active model and emits what the person asks for; the main window does the work."""

    newRequested = Signal()
    openRequested = Signal()
    importRequested = Signal()
    exportOnnxRequested = Signal()
    settingsChanged = Signal(dict)
    segmentCurrent = Signal()
    segmentAll = Signal()
    cancelRequested = Signal()
    versionChosen = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("No model")
        self.title.setProperty("title", True)
        self.title.setWordWrap(True)
        self.details = QLabel("Create a new model, open a model file, or train one from your labels.")
        self.details.setProperty("hint", True)
        self.details.setWordWrap(True)
        new = QPushButton("New…")
        new.setToolTip("A new model: architecture and backbone, with the project's classes")
        new.clicked.connect(self.newRequested)
        open_ = QPushButton(icon("open"), "Open…")
        open_.setToolTip("Open a SegAssist model file (.safetensors)")
        open_.clicked.connect(self.openRequested)
        imp = QPushButton("Import…")
        imp.setToolTip("Import a published mmsegmentation checkpoint (.pth)")
        imp.clicked.connect(self.importRequested)
        self.writing_buttons = (new, imp)  # they write a model file into the project
        row = QHBoxLayout()
        for b in (new, open_, imp):
            row.addWidget(b)

        self.device = _combo(DEVICES, "Where the model runs: auto picks CUDA when present, else the CPU")
        self.backend = _combo(BACKENDS, "torch, or ONNX Runtime (the model is exported once, in the background)")
        self.precision = _combo(PRECISIONS, "auto: bf16 on CPUs that support it, fp16/bf16 on GPUs, else fp32")
        self.tta = QCheckBox("Flip test-time augmentation")
        self.tta.setToolTip("Average the prediction with that of the mirrored image: twice the time, about a tenth "
                            "less to correct")
        self.tta.setChecked(PROPOSAL_OPTIONS["tta"])
        for w in (self.device, self.backend, self.precision):
            w.currentIndexChanged.connect(self._emit_settings)
        self.tta.toggled.connect(self._emit_settings)
        run_box = QGroupBox("Inference")
        form = QFormLayout(run_box)
        form.addRow("Device", self.device)
        form.addRow("Backend", self.backend)
        form.addRow("Precision", self.precision)
        form.addRow(self.tta)

        self.segment_button = QPushButton(icon("segment"), "Segment image")
        self.segment_button.setToolTip("Propose labels for the current image  [Ctrl+R]")
        self.segment_button.setProperty("accent", True)
        self.segment_button.clicked.connect(self.segmentCurrent)
        self.segment_all_button = QPushButton(icon("segment_all"), "Segment all")
        self.segment_all_button.setToolTip("Propose labels for every image that has none  [Ctrl+Shift+R]")
        self.segment_all_button.clicked.connect(self.segmentAll)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.progress_text = QLabel()
        self.progress_text.setProperty("hint", True)
        self.progress_text.setVisible(False)
        self.cancel_button = QPushButton(icon("stop"), "Cancel")
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.cancel_button.setVisible(False)
        seg_row = QHBoxLayout()
        seg_row.addWidget(self.segment_button)
        seg_row.addWidget(self.segment_all_button)
        prog_row = QHBoxLayout()
        prog_row.addWidget(self.progress, 1)
        prog_row.addWidget(self.cancel_button)

        self.versions = QListWidget()
        self.versions.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.versions.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.versions.setMinimumHeight(90)
        self.versions.setToolTip("Model versions in this project; double-click one to use it")
        self.versions.itemDoubleClicked.connect(lambda item: self.versionChosen.emit(item.data(PATH_ROLE)))
        use = QPushButton("Use selected")
        use.clicked.connect(self._choose_selected)
        export = QPushButton("Export ONNX…")
        export.setToolTip("Write the current model as one ONNX file (dynamic batch and image size)")
        export.clicked.connect(self.exportOnnxRequested)
        vrow = QHBoxLayout()
        vrow.addWidget(use)
        vrow.addWidget(export)
        versions_box = QGroupBox("Versions")
        vl = QVBoxLayout(versions_box)
        vl.addWidget(self.versions, 1)
        vl.addLayout(vrow)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.details)
        layout.addLayout(row)
        layout.addLayout(seg_row)
        layout.addLayout(prog_row)
        layout.addWidget(self.progress_text)
        layout.addWidget(run_box)
        layout.addWidget(versions_box, 1)
        self.set_model(None)

    def settings(self) -> dict:
        return {"device": self.device.currentText(), "backend": self.backend.currentText(),
                "precision": self.precision.currentText(), "tta": self.tta.isChecked()}

    def set_settings(self, settings: dict) -> None:
        for combo, key in ((self.device, "device"), (self.backend, "backend"), (self.precision, "precision")):
            if settings.get(key) is not None:
                combo.blockSignals(True)
                combo.setCurrentText(str(settings[key]))
                combo.blockSignals(False)
        self.tta.blockSignals(True)
        self.tta.setChecked(bool(settings.get("tta", PROPOSAL_OPTIONS["tta"])))
        self.tta.blockSignals(False)

    def _emit_settings(self, *_):
        self.settingsChanged.emit(self.settings())

    def set_model(self, info: dict | None) -> None:
        """Show the active model: {"name", "arch", "backbone", "backbone_weights", "classes", "miou", "device",
        "precision"}."""
        has = info is not None
        self.segment_button.setEnabled(has)
        self.segment_all_button.setEnabled(has)
        if not has:
            self.title.setText("No model")
            self.details.setText("Create a new model, open a model file, or train one from your labels.")
            return
        self.title.setText(info.get("name", "model"))
        parts = [f"{info.get('arch', '?')} · {info.get('backbone', '?')}", f"{info.get('classes', '?')} classes"]
        if info.get("miou") is not None or info.get("trained"):
            parts.append(score_text(info.get("miou"), info.get("val_images")))
        where = " · ".join(str(info[k]) for k in ("device", "precision", "backend") if info.get(k))
        weights = f"\nbackbone weights: {describe_origin(info.get('backbone_weights'))}" if "arch" in info else ""
        self.details.setText(" · ".join(parts) + weights + (f"\nruns on {where}" if where else ""))

    def set_versions(self, versions: Sequence, current_path=None) -> None:
        self.versions.clear()
        for v in versions:
            scored = getattr(v, "miou", None) is not None or getattr(v, "val_images", None) is not None
            miou = f"  {score_text(v.miou, getattr(v, 'val_images', None))}" if scored else ""
            text = f"{v.name}{miou}\n{v.arch} · {v.backbone} · {str(v.created)[:16].replace('T', ' ')}"
            item = QListWidgetItem(text)
            item.setData(PATH_ROLE, str(v.path))
            if current_path is not None and str(v.path) == str(current_path):
                f = QFont(item.font())
                f.setBold(True)
                item.setFont(f)
                item.setIcon(icon("accept"))
            self.versions.addItem(item)

    def _choose_selected(self) -> None:
        item = self.versions.currentItem()
        if item is not None:
            self.versionChosen.emit(item.data(PATH_ROLE))

    def set_busy(self, text: str | None, done: int = 0, total: int = 0) -> None:
        """Show progress of auto-segmenting (text None hides it)."""
        busy = text is not None
        for w in (self.progress, self.cancel_button, self.progress_text):
            w.setVisible(busy)
        if busy:
            self.progress.setRange(0, max(total, 0))
            self.progress.setValue(done)
            self.progress_text.setText(text)
