"""The keyboard comes back to the window when one of its dialogs closes.

Without a window manager (and with some), closing a dialog leaves no window active: the window's
shortcuts (Ctrl+Z, the tool keys) do nothing until it is clicked. `FocusReturn` watches the focus
leaving a dialog of the window for nowhere, then activates the window and gives the keyboard to its
home widget (the canvas) unless another widget of the window holds it already.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QWidget
from shiboken6 import isValid


class FocusReturn(QObject):
    """Returns the keyboard to `home` (inside `window`) when a dialog of `window` closes."""

    def __init__(self, window: QWidget, home: QWidget):
        super().__init__(window)
        self.window, self.home = window, home
        QApplication.instance().focusChanged.connect(self._focus_changed)  # dropped with this object

    def _focus_changed(self, old: QWidget | None, new: QWidget | None) -> None:
        if not isValid(self.window):
            return
        if new is None and old is not None and isValid(old) and self._is_dialog_of_window(old.window()):
            QTimer.singleShot(0, self, self.give_back)  # dropped when the window is gone by then

    def _is_dialog_of_window(self, top: QWidget) -> bool:
        parent = top.parentWidget()
        return top is not self.window and parent is not None and parent.window() is self.window

    def give_back(self) -> None:
        """Activate the window and focus `home` when no dialog of it is up and nothing in it has the keyboard."""
        app = QApplication.instance()
        if not isValid(self.window) or not self.window.isVisible() or app.activeModalWidget() is not None:
            return
        if any(w.isVisible() and w.isWindow() and self._is_dialog_of_window(w) for w in app.topLevelWidgets()):
            return  # another dialog of the window is up
        self.window.activateWindow()
        focus = app.focusWidget()
        if focus is None or focus.window() is not self.window:
            self.home.setFocus(Qt.FocusReason.ActiveWindowFocusReason)
