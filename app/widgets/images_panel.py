"""The image list: a status dot per image, filters, "next most uncertain", "mark reviewed", and which images
form the validation set (a marker, and a context-menu action to add or remove one)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.widgets.icons import icon, status_icon

FILTERS = (("All images", None), ("Unlabelled", "unlabelled"), ("Predicted", "predicted"),
           ("Edited", "edited"), ("Reviewed", "reviewed"), ("Unreadable", "error"))
INDEX_ROLE = Qt.ItemDataRole.UserRole
VALIDATION_MARK = "  ◆ validation"


def entry_status(entry) -> str:
    """The status shown for an image entry: "error" when it cannot be read, else its status."""
    return "error" if getattr(entry, "error", None) else entry.status


def entry_tooltip(entry, validation: bool = False) -> str:
    status = entry_status(entry)
    lines = [f"<b>{entry.path.name}</b>", f"status: {'unreadable' if status == 'error' else status}"]
    if validation:
        lines.append("validation image: every model version is scored on it, none is trained on it")
    if status == "error":
        lines.append(f"<span style='color:#e5534b'>{html.escape(str(entry.error))}</span>")
    if getattr(entry, "mean_entropy", None) is not None:
        lines.append(f"mean entropy: {entry.mean_entropy:.3f}")
    return "<br>".join(lines)


class ImagesPanel(QWidget):
    """Lists the project's images. Emits `activated(index)` when the person picks one."""

    activated = Signal(int)
    nextUncertain = Signal()
    markReviewed = Signal()
    validationToggled = Signal(int, bool)  # (index, member): the person adds an image to validation or removes it

    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries: list = []
        self.current: int | None = None
        self.validation: set[str] = set()
        self.filter = QComboBox()
        for text, _ in FILTERS:
            self.filter.addItem(text)
        self.filter.setToolTip("Show only images with this status")
        self.filter.currentIndexChanged.connect(self._apply_filter)
        self.list = QListWidget()
        self.list.setUniformItemSizes(True)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.summary = QLabel()
        self.summary.setProperty("hint", True)
        self.summary.setWordWrap(True)  # a long summary must not widen the dock
        self.next_button = QPushButton(icon("next"), "Next uncertain")
        self.next_button.setToolTip("Open the not-yet-reviewed image whose prediction is least certain "
                                    "(highest mean entropy)  [N]")
        self.next_button.clicked.connect(self.nextUncertain)
        self.review_button = QPushButton(icon("reviewed"), "Mark reviewed")
        self.review_button.setToolTip("Mark the current image's labels as checked  [Ctrl+Return]")
        self.review_button.clicked.connect(self.markReviewed)
        buttons = QHBoxLayout()
        buttons.addWidget(self.next_button)
        buttons.addWidget(self.review_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.filter)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)

    def set_entries(self, entries: Sequence) -> None:
        self.entries = list(entries)
        self.list.blockSignals(True)
        self.list.clear()
        for i, entry in enumerate(self.entries):
            item = QListWidgetItem()
            item.setData(INDEX_ROLE, i)
            self._fill(item, entry)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self._apply_filter()
        self._summarise()
        if self.current is not None:
            self.set_current(self.current)

    def update_entry(self, index: int) -> None:
        """Refresh one image's row (after a status change)."""
        item = self.list.item(index)
        if item is not None:
            self._fill(item, self.entries[index])
            self._apply_filter()
            self._summarise()

    def refresh(self) -> None:
        for i in range(self.list.count()):
            self._fill(self.list.item(i), self.entries[i])
        self._apply_filter()
        self._summarise()

    def set_validation(self, names) -> None:
        """The file names of the validation images (marked in the list)."""
        self.validation = set(names)
        self.refresh()

    def menu_for(self, index: int) -> QMenu:
        """The context menu of image `index`: put it into the validation set or take it out."""
        menu = QMenu(self)
        entry = self.entries[index]
        member = entry.path.name in self.validation
        action = menu.addAction("Remove from the validation set" if member else "Use for validation")
        action.setToolTip("Validation images score every model version and are never trained on")
        action.setEnabled(member or entry_status(entry) in ("edited", "reviewed"))
        action.triggered.connect(lambda: self.validationToggled.emit(index, not member))
        return menu

    def _context_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is not None:
            self.menu_for(item.data(INDEX_ROLE)).exec(self.list.viewport().mapToGlobal(pos))

    def set_current(self, index: int | None) -> None:
        self.current = index
        self.list.blockSignals(True)
        if index is None:
            self.list.setCurrentRow(-1)
        else:
            item = self.list.item(index)
            if item is not None and item.isHidden():
                self.filter.setCurrentIndex(0)
            self.list.setCurrentRow(index)
            self.list.scrollToItem(self.list.item(index))
        self.list.blockSignals(False)

    def _fill(self, item: QListWidgetItem, entry) -> None:
        status = entry_status(entry)
        member = entry.path.name in self.validation
        item.setText(entry.path.name + (VALIDATION_MARK if member else ""))
        item.setIcon(status_icon(status))
        item.setToolTip(entry_tooltip(entry, member))

    def _apply_filter(self) -> None:
        wanted = FILTERS[self.filter.currentIndex()][1]
        for i in range(self.list.count()):
            hide = wanted is not None and entry_status(self.entries[i]) != wanted
            self.list.item(i).setHidden(hide)

    def _summarise(self) -> None:
        counts: dict[str, int] = {}
        for e in self.entries:
            s = entry_status(e)
            counts[s] = counts.get(s, 0) + 1
        parts = [f"{len(self.entries)} image{'s' if len(self.entries) != 1 else ''}"]
        for key in ("reviewed", "edited", "predicted", "unlabelled", "error"):
            if counts.get(key):
                parts.append(f"{counts[key]} {key if key != 'error' else 'unreadable'}")
        members = sum(e.path.name in self.validation for e in self.entries)
        if members:
            parts.append(f"{members} for validation")
        self.summary.setText(" · ".join(parts))

    def _on_current(self, item: QListWidgetItem | None, _previous) -> None:
        if item is None:
            return
        index = item.data(INDEX_ROLE)
        if index != self.current:
            self.activated.emit(index)
