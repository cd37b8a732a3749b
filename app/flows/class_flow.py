"""Editing the project's classes from the classes panel: add, rename, recolour, reorder, delete.

Reordering and deleting rewrite every label file (`app.core.storage.class_edit`), so they ask first, without
blocking. The flow gets its dependencies explicitly (the editor, which holds the project; a widget to
parent its questions) and reports through signals; the window shows the new classes on its panels.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget


class ClassFlow(QObject):
    """What the classes panel asks for, done on the editor's project."""

    message = Signal(str, int)    # a line for the status bar, and for how long (ms)
    warning = Signal(str, str)    # (title, text) worth a message box
    classesChanged = Signal()     # the project's classes changed: show them
    classChosen = Signal(int)     # the class to select in the panel
    reopen = Signal(int)          # the image that was closed for a reorder, to open again
    enabledChanged = Signal()

    def __init__(self, editor, dialog_parent: QWidget, parent: QObject | None = None):
        super().__init__(parent)
        self.editor, self.dialog_parent = editor, dialog_parent

    @property
    def project(self):
        return self.editor.project

    # -- one class ------------------------------------------------------------------------------------
    def _change(self, what: str, change) -> bool:
        try:
            change()
        except (ValueError, OSError) as exc:
            self.warning.emit(f"Class not {what}", str(exc))
            return False
        self.editor.classes_changed()
        self.classesChanged.emit()
        return True

    def add(self, name: str) -> None:
        self._change("added", lambda: self.project.add_class(name))
        self.classChosen.emit(len(self.project.classes) - 1)

    def rename(self, index: int, name: str) -> None:
        self._change("renamed", lambda: self.project.rename_class(index, name))

    def recolor(self, index: int, color: tuple) -> None:
        self._change("recoloured", lambda: self.project.recolor_class(index, tuple(color)))

    # -- the order ------------------------------------------------------------------------------------
    def ask_delete(self, index: int) -> QMessageBox | None:
        classes = self.project.classes if self.project is not None else []
        if not 0 <= index < len(classes) or len(classes) < 2:
            return None
        name = classes[index].name
        n = len(self.project.labelled())
        order = [i for i in range(len(classes)) if i != index]
        return self.confirm(
            "Delete a class", f"Delete the class “{name}”?\n\nEvery pixel labelled {name} in the {n} labelled "
            f"image{'s' if n != 1 else ''} becomes “not labelled”, and the classes after it move up one number. "
            "This cannot be undone.", "Delete", lambda: self.reorder(order, f"Deleted {name}"))

    def ask_move(self, index: int, delta: int) -> QMessageBox | None:
        classes = self.project.classes if self.project is not None else []
        j = index + delta
        if not (0 <= index < len(classes) and 0 <= j < len(classes)):
            return None
        order = list(range(len(classes)))
        order[index], order[j] = order[j], order[index]
        done = f"{classes[index].name} is class {j + 1} now"
        if not self.project.labelled():
            self.reorder(order, done)
            return None
        return self.confirm(
            "Reorder classes", f"Swap “{classes[index].name}” and “{classes[j].name}”?\n\nEvery label file is "
            "rewritten so each pixel keeps its class; the keys 1-9 follow the new order.", "Reorder",
            lambda: self.reorder(order, done))

    def confirm(self, title: str, text: str, yes: str, on_yes) -> QMessageBox:
        """Ask without blocking; `on_yes()` runs when the person agrees."""
        box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.Cancel,
                          self.dialog_parent)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        ok = box.addButton(yes, QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(lambda b: on_yes() if b is ok else None)
        box.open()
        return box

    def reorder(self, order: list[int], done: str = "Classes changed") -> bool:
        """New class order (old indices; a class left out is deleted), label files remapped as one change."""
        from app.core.storage.class_edit import reorder_classes

        editor = self.editor
        if not editor.save_all():
            self.warning.emit("Classes not changed", "The current labels could not be saved; nothing was changed.")
            return False
        index, chosen = editor.index, editor.current_class
        editor.close_image()
        try:
            lut = reorder_classes(self.project, order)
        except (ValueError, OSError) as exc:
            self.warning.emit("Classes not changed", f"{exc}\n\nThe classes and labels are as they were.")
            lut = None
        editor.classes_changed()
        self.classesChanged.emit()
        if lut is not None and chosen is not None:
            new = int(lut[chosen])
            editor.current_class = new if new != 255 else 0
        self.classChosen.emit(editor.current_class or 0)
        if index is not None:
            self.reopen.emit(index)
        if lut is not None:
            self.message.emit(done, 6000)
        self.enabledChanged.emit()
        return lut is not None
