"""The strip above the canvas that says a project is read-only (and why), with the way out."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy

READ_ONLY_STYLE = ("QFrame#readOnlyBanner { background: #5a4a1e; border-bottom: 1px solid #a8893a; }"
                   "QFrame#readOnlyBanner QLabel { color: #f6e7b8; }")
REDIRECTED_STYLE = ("QFrame#readOnlyBanner { background: #23415e; border-bottom: 1px solid #3d6f9c; }"
                    "QFrame#readOnlyBanner QLabel { color: #d6e6f5; }")


class ReadOnlyBanner(QFrame):
    """Hidden for a writable project. `saveElsewhere` asks for a folder the labels are written to."""

    saveElsewhere = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("readOnlyBanner")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.button = QPushButton("Save labels to another folder…")
        self.button.setToolTip("Choose a folder: labels, the recovery journal and the project file are written "
                               "there from now on, and editing is on again")
        self.button.clicked.connect(self.saveElsewhere)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 10, 6)
        row.addWidget(self.text, 1)
        row.addWidget(self.button)
        self.hide()

    def show_read_only(self, why: str) -> None:
        self.setStyleSheet(READ_ONLY_STYLE)
        self.text.setText(f"<b>Read-only:</b> {why or 'this folder cannot be written'}. Nothing is saved "
                          "here, so the editing tools are off; you can look at the images and labels and export "
                          "them.")
        self.button.setVisible(True)
        self.show()

    def show_redirected(self, folder: Path) -> None:
        self.setStyleSheet(REDIRECTED_STYLE)
        self.text.setText(f"<b>Saving elsewhere.</b> This folder is read-only; labels and the project file are "
                          f"written to {folder}.")
        self.button.setVisible(False)
        self.show()
