"""The Smart tools panel: paint protection, superpixel scale and boundaries, SAM, clean-up."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.editing.protection import IGNORE_INDEX, PaintGuard

SCALES = ("Coarse", "Medium", "Fine")


class SmartPanel(QWidget):
    """Thin view: emits what the person chose; `set_classes` and `set_sam_state` mirror the state."""

    guardChanged = Signal(object)        # PaintGuard
    scaleChanged = Signal(int)
    boundariesToggled = Signal(bool)
    loadSamRequested = Signal()
    refineRequested = Signal()
    cleanupRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._names: list[str] = []
        self.over = QComboBox()
        self.over.setToolTip("What painting may cover: anything, only unlabelled pixels, or only one class")
        self.protect = QToolButton()
        self.protect.setText("None")
        self.protect.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.protect.setToolTip("Classes no tool may paint over or erase")
        self.protect_menu = QMenu(self)
        self.protect.setMenu(self.protect_menu)
        guard_box = QGroupBox("Protection")
        form = QFormLayout(guard_box)
        form.addRow("Paint over", self.over)
        form.addRow("Protect", self.protect)

        self.scale = QComboBox()
        self.scale.addItems(SCALES)
        self.scale.setCurrentIndex(1)
        self.boundaries = QCheckBox("Show boundaries")
        sp_box = QGroupBox("Superpixels")
        form = QFormLayout(sp_box)
        form.addRow("Size", self.scale)
        form.addRow(self.boundaries)

        self.sam_state = QLabel("No SAM 2 checkpoint loaded")
        self.sam_state.setWordWrap(True)
        self.load_sam = QPushButton("Load SAM 2 checkpoint…")
        self.refine = QPushButton("Refine uncertain regions")
        self.refine.setToolTip("Prompt SAM from the proposal where the model's entropy is high")
        sam_box = QGroupBox("Segment Anything")
        v = QVBoxLayout(sam_box)
        for w in (self.sam_state, self.load_sam, self.refine):
            v.addWidget(w)

        self.cleanup = QPushButton("Clean up labels…")
        layout = QVBoxLayout(self)
        for w in (guard_box, sp_box, sam_box, self.cleanup):
            layout.addWidget(w)
        layout.addStretch(1)

        self.over.currentIndexChanged.connect(lambda _: self._emit_guard())
        self.scale.currentIndexChanged.connect(self.scaleChanged)
        self.boundaries.toggled.connect(self.boundariesToggled)
        self.load_sam.clicked.connect(self.loadSamRequested)
        self.refine.clicked.connect(self.refineRequested)
        self.cleanup.clicked.connect(self.cleanupRequested)
        self.set_classes([])

    @property
    def names(self) -> list[str]:
        """The class names the panel offers (the project's, as last set)."""
        return list(self._names)

    def set_classes(self, names: list[str]) -> None:
        guard = self.guard()
        self._names = list(names)
        self.over.blockSignals(True)
        self.over.clear()
        self.over.addItem("Anything", None)
        self.over.addItem("Unlabelled only", IGNORE_INDEX)
        for i, name in enumerate(names):
            self.over.addItem(f"Only {name}", i)
        index = self.over.findData(guard.only_over) if guard.only_over is not None else 0
        self.over.setCurrentIndex(max(index, 0))
        self.over.blockSignals(False)
        self.protect_menu.clear()
        for i, name in enumerate(names):
            act = QAction(name, self.protect_menu)
            act.setCheckable(True)
            act.setChecked(i in guard.protected)
            act.setData(i)
            act.toggled.connect(lambda _=False: self._emit_guard())
            self.protect_menu.addAction(act)
        self._show_protected()

    def guard(self) -> PaintGuard:
        protected = frozenset(a.data() for a in self.protect_menu.actions() if a.isChecked()) \
            if hasattr(self, "protect_menu") else frozenset()
        return PaintGuard(protected, self.over.currentData() if self.over.count() else None)

    def _show_protected(self) -> None:
        names = [a.text() for a in self.protect_menu.actions() if a.isChecked()]
        self.protect.setText(", ".join(names) if names else "None")

    def _emit_guard(self) -> None:
        self._show_protected()
        self.guardChanged.emit(self.guard())

    def set_sam_state(self, text: str) -> None:
        self.sam_state.setText(text)
