"""The class list: colour swatches, names, keys 1-9; add, rename, recolour, reorder and delete."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QColorDialog,
    QHBoxLayout,
    QInputDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.widgets.icons import swatch


class ClassesPanel(QWidget):
    """Shows the classes; the selected one is what the brush, fill and polygon paint."""

    selected = Signal(int)
    addRequested = Signal(str)
    renameRequested = Signal(int, str)
    recolorRequested = Signal(int, tuple)
    deleteRequested = Signal(int)
    moveRequested = Signal(int, int)  # class index, -1 (up) or +1 (down)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.classes: list = []
        self.list = QListWidget()
        self.list.currentRowChanged.connect(self._on_row)
        self.list.itemDoubleClicked.connect(lambda item: self.rename(self.list.row(item)) if self.editable else None)
        self.list.setToolTip("Keys 1-9 pick a class; double-click to rename")
        add = QPushButton("Add…")
        add.setToolTip("Add a class")
        add.clicked.connect(self._ask_add)
        rename = QPushButton("Rename…")
        rename.clicked.connect(lambda: self.rename(self.list.currentRow()))
        recolor = QPushButton("Colour…")
        recolor.clicked.connect(lambda: self.recolor(self.list.currentRow()))
        self.up = QPushButton("▲")
        self.up.setToolTip("Move the class up (its number and key change; labels follow)")
        self.up.clicked.connect(lambda: self._move(-1))
        self.down = QPushButton("▼")
        self.down.setToolTip("Move the class down (its number and key change; labels follow)")
        self.down.clicked.connect(lambda: self._move(1))
        self.delete = QPushButton("✕")
        self.delete.setToolTip("Delete the class…; its labelled pixels become 'not labelled' (asks first)")
        self.delete.clicked.connect(lambda: self._delete(self.list.currentRow()))
        side = QVBoxLayout()  # beside the list, so the list keeps its height on small screens
        side.setContentsMargins(0, 0, 0, 0)
        for b in (self.up, self.down):
            side.addWidget(b)
        side.addStretch(1)
        side.addWidget(self.delete)
        for b in (self.up, self.down, self.delete):
            b.setFixedWidth(b.fontMetrics().horizontalAdvance("▲") + 22)
        row = QHBoxLayout()
        row.addWidget(self.list, 1)
        row.addLayout(side)
        buttons = QHBoxLayout()
        for b in (add, rename, recolor):
            buttons.addWidget(b)
        self.edit_buttons = (add, rename, recolor, self.up, self.down, self.delete)
        self.editable = True
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(row, 1)
        layout.addLayout(buttons)

    def set_editable(self, editable: bool) -> None:
        """Whether classes may be added, renamed, recoloured, moved or deleted (not in a read-only project)."""
        self.editable = editable
        for b in self.edit_buttons:
            b.setEnabled(editable)

    def set_classes(self, classes: Sequence, current: int | None = None) -> None:
        row = self.list.currentRow() if current is None else current
        self.classes = list(classes)
        self.list.blockSignals(True)
        self.list.clear()
        for i, c in enumerate(self.classes):
            key = f"{i + 1}" if i < 9 else " "
            item = QListWidgetItem(swatch(c.color, 16), f"{key}   {c.name}")
            item.setToolTip(f"{c.name}: class {i}, colour {tuple(c.color)}" + (f", key {i + 1}" if i < 9 else ""))
            self.list.addItem(item)
        self.list.setCurrentRow(min(max(row, 0), len(self.classes) - 1) if self.classes else -1)
        self.list.blockSignals(False)

    def set_current(self, index: int) -> None:
        if 0 <= index < self.list.count():
            self.list.setCurrentRow(index)

    def current(self) -> int:
        return self.list.currentRow()

    def _on_row(self, row: int) -> None:
        if row >= 0:
            self.selected.emit(row)

    def _move(self, delta: int) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.classes) and 0 <= row + delta < len(self.classes):
            self.moveRequested.emit(row, delta)

    def _delete(self, row: int) -> None:
        if 0 <= row < len(self.classes) and len(self.classes) > 1:
            self.deleteRequested.emit(row)

    def _ask_add(self) -> None:
        name, ok = QInputDialog.getText(self, "Add class", "Name of the new class:")
        if ok and name.strip():
            self.addRequested.emit(name.strip())

    def rename(self, index: int) -> None:
        if not 0 <= index < len(self.classes):
            return
        name, ok = QInputDialog.getText(self, "Rename class", "New name:", QLineEdit.EchoMode.Normal,
                                        self.classes[index].name)
        if ok and name.strip() and name.strip() != self.classes[index].name:
            self.renameRequested.emit(index, name.strip())

    def recolor(self, index: int) -> None:
        if not 0 <= index < len(self.classes):
            return
        color = QColorDialog.getColor(QColor(*self.classes[index].color), self, f"Colour of {self.classes[index].name}")
        if color.isValid():
            self.recolorRequested.emit(index, (color.red(), color.green(), color.blue()))

    def keyPressEvent(self, event) -> None:  # the list would otherwise eat the class keys
        if Qt.Key.Key_1 <= event.key() <= Qt.Key.Key_9:
            event.ignore()
            return
        super().keyPressEvent(event)
