"""File → Import labels…: format, source, the class mapping to confirm or change, progress and cancel."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from labelformats import IMPORT_FORMATS

FILE_FORMATS = ("coco", "coco-panoptic")  # the source is a JSON file; the others read a folder
ADD, DROP = "add as a new class", "drop (not labelled, 255)"


def _path_row(edit: QLineEdit, browse) -> QWidget:
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(edit, 1)
    button = QPushButton("Browse…")
    button.clicked.connect(browse)
    lay.addWidget(button)
    return row


class ImportDialog(QDialog):
    """A view: `checkRequested` / `importRequested` carry the options; the flow answers through
    `show_mapping`, `show_progress`, `show_error` and `finish`."""

    checkRequested = Signal(dict)
    importRequested = Signal(dict)
    cancelRequested = Signal()

    def __init__(self, class_names: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Import labels")
        self.resize(640, 560)
        self.class_names = list(class_names)
        self.format = QComboBox()
        for name, text in IMPORT_FORMATS.items():
            self.format.addItem(name, name)
            self.format.setItemData(self.format.count() - 1, text, 3)  # tooltip role
        self.format_help = QLabel()
        self.format_help.setWordWrap(True)
        self.source = QLineEdit()
        self.classes_file = QLineEdit()
        self.classes_file.setPlaceholderText("optional: classes.json, segassist.json or one name per line")
        self.unknown = QComboBox()
        self.unknown.addItems(["add", "drop", "error"])
        self.unknown.setToolTip("what classes the project lacks become at first; change each row below")
        self.as_proposals = QCheckBox("Predictions of another tool: import as proposals to correct, not as labels")
        self.keep_existing = QCheckBox("Keep my labels: fill only pixels not labelled yet")
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("", self.format_help)
        form.addRow("Labels", _path_row(self.source, self._browse_source))
        form.addRow("Class map", _path_row(self.classes_file, self._browse_classes))
        form.addRow("Classes the project lacks", self.unknown)
        form.addRow("", self.as_proposals)
        form.addRow("", self.keep_existing)
        self.check_button = QPushButton("Check and preview")
        self.check_button.clicked.connect(lambda: self.checkRequested.emit(self.options()))
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["In the files", "Becomes in the project"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.summary = QLabel("Choose the labels, then check them: nothing is written before Import.")
        self.summary.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.import_button = QPushButton("Import")
        self.import_button.setEnabled(False)
        self.import_button.clicked.connect(lambda: self.importRequested.emit(self.options()))
        self.cancel_button = QPushButton("Close")
        self.cancel_button.clicked.connect(self._cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.check_button)
        buttons.addStretch(1)
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.cancel_button)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.summary)
        lay.addWidget(self.progress)
        lay.addLayout(buttons)
        self.busy = False
        self.format.currentIndexChanged.connect(self._format_changed)
        for w in (self.source, self.classes_file):
            w.textChanged.connect(self._invalidate)
        for w in (self.format, self.unknown):
            w.currentIndexChanged.connect(self._invalidate)
        self._format_changed()

    # -- what the person chose ----------------------------------------------------------------------------
    def options(self) -> dict:
        return {"format": self.format.currentData(), "source": self.source.text().strip(),
                "classes_file": self.classes_file.text().strip() or None, "unknown": self.unknown.currentText(),
                "as_proposals": self.as_proposals.isChecked(), "keep_existing": self.keep_existing.isChecked(),
                "overrides": self.overrides()}

    def overrides(self) -> dict[str, str | None]:
        """Source class -> project class name, a new name, or None (dropped), one per previewed row."""
        out = {}
        for row in range(self.table.rowCount()):
            source = self.table.item(row, 0)
            combo = self.table.cellWidget(row, 1)
            if source is None or combo is None:
                continue
            choice = combo.currentText()
            out[source.data(32)] = None if choice == DROP else source.data(33) if choice == ADD else choice
        return out

    # -- the flow's answers -------------------------------------------------------------------------------
    def show_mapping(self, rows: list[tuple[str, str, str | None]], summary: str) -> None:
        """rows: (source class label, its name for a new class, the project class it maps to or None = drop)."""
        from PySide6.QtWidgets import QTableWidgetItem

        self.table.setRowCount(len(rows))
        for i, (label, new_name, target) in enumerate(rows):
            item = QTableWidgetItem(label)
            item.setData(32, label)
            item.setData(33, new_name)
            self.table.setItem(i, 0, item)
            combo = QComboBox()
            combo.addItems(self.class_names + [ADD, DROP])
            if target is None:
                combo.setCurrentText(DROP)
            elif target in self.class_names:
                combo.setCurrentText(target)
            else:
                combo.setCurrentText(ADD)
            self.table.setCellWidget(i, 1, combo)
        self.summary.setText(summary)
        self.import_button.setEnabled(bool(rows))

    def show_progress(self, done: int, total: int, text: str = "") -> None:
        self.progress.setVisible(True)
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        if text:
            self.progress.setFormat(f"%v / %m  {text}")

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.check_button.setEnabled(not busy)
        self.import_button.setEnabled(not busy and self.table.rowCount() > 0)
        self.cancel_button.setText("Cancel" if busy else "Close")
        if not busy:
            self.progress.setVisible(False)

    def show_error(self, text: str) -> None:
        self.summary.setText(f"<span style='color:#e5534b'>{text}</span>")

    def finish(self, text: str) -> None:
        self.summary.setText(text)
        self.set_busy(False)
        self.import_button.setEnabled(False)

    # -- internals ----------------------------------------------------------------------------------------
    def _format_changed(self) -> None:
        self.format_help.setText(IMPORT_FORMATS[self.format.currentData()])

    def _invalidate(self) -> None:
        self.table.setRowCount(0)
        self.import_button.setEnabled(False)

    def _cancel(self) -> None:
        if self.busy:
            self.cancelRequested.emit()
        else:
            self.reject()

    def _browse_source(self) -> None:
        if self.format.currentData() in FILE_FORMATS:
            path, _ = QFileDialog.getOpenFileName(self, "COCO JSON", str(Path.home()), "JSON (*.json)")
        else:
            path = QFileDialog.getExistingDirectory(self, "Folder of label files", str(Path.home()))
        if path:
            self.source.setText(path)

    def _browse_classes(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Class map", str(Path.home()), "Class maps (*.json *.txt)")
        if path:
            self.classes_file.setText(path)
