"""File → Export…: format, folder, which images, splits, polygons; the class map it writes; progress, cancel."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labelformats import EXPORT_FORMATS, LOSSLESS

CLASS_TABLE_TITLES = {  # what each format writes about the classes (the table below shows it)
    **{fmt: "Class map written beside the labels (classes.json):" for fmt in ("index", "palette", "rgb", "voc",
                                                                             "cityscapes")},
    "coco": "Categories written into annotations/instances_<split>.json (no classes.json):",
    "labelme": "Class names written as each shape's label (no classes.json):",
    "yolo": "Class names written into data.yaml (no classes.json):",
}
POLYGON_FORMATS = ("coco", "labelme")  # exact masks by default, polygons on request; yolo is polygons only


class ExportDialog(QDialog):
    """A view: `exportRequested` carries the options; the flow answers with `show_progress` and `finish`."""

    exportRequested = Signal(dict)
    cancelRequested = Signal()

    def __init__(self, classes: list, counts: dict[str, int], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export labels")
        self.resize(600, 540)
        self.classes = list(classes)
        self.format = QComboBox()
        for name in EXPORT_FORMATS:
            self.format.addItem(name, name)
        self.format.setCurrentText("palette")
        self.format_help = QLabel()
        self.format_help.setWordWrap(True)
        self.out = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        out_row = QWidget()
        out_lay = QHBoxLayout(out_row)
        out_lay.setContentsMargins(0, 0, 0, 0)
        out_lay.addWidget(self.out, 1)
        out_lay.addWidget(browse)
        self.which = QComboBox()
        for key, text in (("reviewed", "Reviewed images"), ("labelled", "All labelled images"),
                          ("all", "Everything, proposals where nothing is labelled")):
            self.which.addItem(f"{text} ({counts.get(key, 0)})", key)
        self.which.setCurrentIndex(1)
        self.val = QDoubleSpinBox()
        self.val.setRange(0.0, 0.9)
        self.val.setSingleStep(0.05)
        self.val.setSpecialValueText("no split (all in train)")
        self.val.setToolTip("share of the images in a val split, chosen by a hash of the file name")
        self.polygons = QCheckBox("Polygons instead of exact masks")
        self.tolerance = QDoubleSpinBox()
        self.tolerance.setRange(0.0, 10.0)
        self.tolerance.setValue(1.0)
        self.tolerance.setSuffix(" px")
        self.tolerance.setToolTip("how far a simplified polygon may leave the region's boundary")
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("", self.format_help)
        form.addRow("Folder", out_row)
        form.addRow("Images", self.which)
        form.addRow("Validation share", self.val)
        form.addRow("", self.polygons)
        form.addRow("Polygon tolerance", self.tolerance)
        self.table = QTableWidget(len(self.classes) + 1, 3)
        self.table.setHorizontalHeaderLabels(["Value in the files", "Class", "Colour"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.export_button = QPushButton("Export")
        self.export_button.clicked.connect(self._export)
        self.cancel_button = QPushButton("Close")
        self.cancel_button.clicked.connect(self._cancel)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.cancel_button)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        self.table_title = QLabel()
        lay.addWidget(self.table_title)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.note)
        lay.addWidget(self.progress)
        lay.addLayout(buttons)
        self.busy = False
        self.format.currentIndexChanged.connect(self._format_changed)
        self.polygons.toggled.connect(self._format_changed)
        self._format_changed()

    def options(self) -> dict:
        fmt = self.format.currentData()
        return {"format": fmt, "out": self.out.text().strip(), "which": self.which.currentData(),
                "val_fraction": float(self.val.value()),
                "polygons": fmt in POLYGON_FORMATS and self.polygons.isChecked(),
                "tolerance": float(self.tolerance.value())}

    def show_progress(self, done: int, total: int, text: str = "") -> None:
        self.progress.setVisible(True)
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.export_button.setEnabled(not busy)
        self.cancel_button.setText("Cancel" if busy else "Close")
        if not busy:
            self.progress.setVisible(False)

    def finish(self, text: str, error: bool = False) -> None:
        self.set_busy(False)
        self.note.setText(f"<span style='color:#e5534b'>{text}</span>" if error else text)

    def _export(self) -> None:
        if not self.out.text().strip():
            self._browse()
        if self.out.text().strip():
            self.exportRequested.emit(self.options())

    def _cancel(self) -> None:
        if self.busy:
            self.cancelRequested.emit()
        else:
            self.reject()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into a folder", str(Path.home()))
        if folder:
            self.out.setText(folder)

    def _format_changed(self) -> None:
        fmt = self.format.currentData()
        self.polygons.setEnabled(fmt in POLYGON_FORMATS)
        self.tolerance.setEnabled(fmt == "yolo" or (fmt in POLYGON_FORMATS and self.polygons.isChecked()))
        exact = fmt in LOSSLESS and not (fmt in POLYGON_FORMATS and self.polygons.isChecked())
        self.format_help.setText(EXPORT_FORMATS[fmt])
        self.note.setText("Exact: the files hold every label pixel as it is." if exact else
                          "Polygons: each region's outer boundary within the tolerance; holes are lost.")
        self.table_title.setText(CLASS_TABLE_TITLES.get(fmt, "Classes and the values the files hold:"))
        offset = 1 if fmt == "coco" else 0  # COCO category ids count from 1
        rows = [(str(i + offset), c.name, c.color) for i, c in enumerate(self.classes)]
        rows.append(("255" if fmt != "coco" else "(none)", "not labelled", None))
        for r, (value, name, color) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(value))
            self.table.setItem(r, 1, QTableWidgetItem(name))
            swatch = QTableWidgetItem("" if color is None else "#{:02x}{:02x}{:02x}".format(*color))
            if color is not None:
                swatch.setBackground(QColor(*color))
            self.table.setItem(r, 2, swatch)
