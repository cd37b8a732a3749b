"""Clean up labels: fill holes, remove small islands or smooth boundaries, with a preview of what changes."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.smart import cleanup

OPERATIONS = (("Fill holes", "Largest hole (px, 0 = any)", 0, 0, 10_000_000),
              ("Remove islands", "Smaller than (px)", 64, 1, 10_000_000),
              ("Smooth boundaries", "Radius (px)", 2, 1, 50))


class CleanupDialog(QDialog):
    """Emits `previewRequested(operation)`; `accepted` with `operation()` and `all_images()` to apply."""

    previewRequested = Signal(object)

    def __init__(self, class_names: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Clean up labels")
        self.op = QComboBox()
        self.op.addItems([o[0] for o in OPERATIONS])
        self.amount = QSpinBox()
        self.amount_label = QLabel()
        self.classes = QComboBox()
        self.classes.addItem("All classes", None)
        for i, name in enumerate(class_names):
            self.classes.addItem(name, i)
        self.scope = QComboBox()
        self.scope.addItems(["This image", "All labelled images"])
        self.result = QLabel("Preview shows the pixels that would change.")
        self.result.setWordWrap(True)
        preview = QPushButton("Preview")
        form = QFormLayout()
        form.addRow("Operation", self.op)
        form.addRow(self.amount_label, self.amount)
        form.addRow("Classes", self.classes)
        form.addRow("Images", self.scope)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Apply | QDialogButtonBox.StandardButton.Cancel)
        buttons.addButton(preview, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(self.accept)
        buttons.rejected.connect(self.reject)
        preview.clicked.connect(lambda: self.previewRequested.emit(self.operation()))
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.result)
        layout.addWidget(buttons)
        self.op.currentIndexChanged.connect(self._op_changed)
        self._op_changed(0)

    def _op_changed(self, index: int) -> None:
        _, label, value, lo, hi = OPERATIONS[index]
        self.amount_label.setText(label)
        self.amount.setRange(lo, hi)
        self.amount.setValue(value)

    def all_images(self) -> bool:
        return self.scope.currentIndex() == 1

    def operation(self):
        """The chosen operation as a function of the label map."""
        i, n, classes = self.op.currentIndex(), self.amount.value(), self.classes.currentData()
        cls = None if classes is None else [classes]
        if i == 0:
            return lambda lab: cleanup.fill_holes(lab, cls, max_area=n or None)
        if i == 1:
            return lambda lab: cleanup.remove_islands(lab, n, cls)
        return lambda lab: cleanup.smooth(lab, n, cls)

    def show_count(self, count: int | None) -> None:
        self.result.setText("Nothing would change in this image." if not count
                            else f"{count} pixels of this image would change (shown in magenta).")
