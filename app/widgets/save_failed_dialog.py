"""What the person sees when labels, the recovery journal or the project file cannot be written:
what is safe and what is not, and the ways out (retry, save to another folder, export)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget


class SaveFailedDialog(QMessageBox):
    """A non-blocking warning with Retry / Save to another folder… / Export labels… / Keep editing."""

    retryRequested = Signal()
    overwriteRequested = Signal()  # save over files that changed on disk since they were read
    elsewhereRequested = Signal()
    exportRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(QMessageBox.Icon.Warning, "Labels not saved", "", QMessageBox.StandardButton.NoButton,
                         parent)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.retry_button = self.addButton("Retry", QMessageBox.ButtonRole.AcceptRole)
        self.elsewhere_button = self.addButton("Save to another folder…", QMessageBox.ButtonRole.ActionRole)
        self.export_button = self.addButton("Export labels…", QMessageBox.ButtonRole.ActionRole)
        self.overwrite_button = self.addButton("Overwrite", QMessageBox.ButtonRole.ActionRole)
        self.overwrite_button.setToolTip("Save over the files that changed on disk since they were read")
        self.keep_button = self.addButton("Keep editing", QMessageBox.ButtonRole.RejectRole)
        self.setDefaultButton(self.retry_button)
        self.buttonClicked.connect(self._clicked)

    def show_problem(self, text: str) -> None:
        """Show (or update, when already shown) the message."""
        self.setText(text)
        self.overwrite_button.setVisible("changed on disk" in text)
        if not self.isVisible():
            self.open()

    def _clicked(self, button) -> None:
        if button is self.retry_button:
            self.retryRequested.emit()
        elif button is self.overwrite_button:
            self.overwriteRequested.emit()
        elif button is self.elsewhere_button:
            self.elsewhereRequested.emit()
        elif button is self.export_button:
            self.exportRequested.emit()
