"""The keyboard comes back to the window when one of its dialogs closes.

Without a window manager (and with some), closing a dialog leaves no window active: the window's
shortcuts (Ctrl+Z, the tool keys) do nothing until it is clicked. `FocusReturn` watches the window's
dialogs (each child window, from when it is first polished) and, when one hides, activates the window
and gives the keyboard to its home widget (the canvas) unless another widget of the window holds it.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QWidget
from shiboken6 import isValid


class FocusReturn(QObject):
    """Returns the keyboard to `home` (inside `window`) when a dialog of `window` closes."""

    def __init__(self, window: QWidget, home: QWidget):
        super().__init__(window)
        self.window, self.home = window, home
        window.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        kind = event.type()
        if obj is self.window:
            if kind == QEvent.Type.ChildPolished:
                child = event.child()
                if isinstance(child, QWidget) and child.isWindow():
                    child.removeEventFilter(self)  # once per dialog, however often it is polished
                    child.installEventFilter(self)
        elif kind == QEvent.Type.Hide and isinstance(obj, QWidget) and obj.isWindow():
            QTimer.singleShot(0, self, self.give_back)  # dropped when the window is gone by then
        return False

    def _is_dialog_of_window(self, top: QWidget) -> bool:
        parent = top.parentWidget()
        return top is not self.window and parent is not None and parent.window() is self.window

    def give_back(self) -> None:
        """Activate the window and focus `home` when no dialog of it is up and nothing in it has the keyboard."""
        app = QApplication.instance()
        if not isValid(self.window) or not self.window.isVisible():
            return
        modal = app.activeModalWidget()
        if modal is not None and modal.isVisible() and self._is_dialog_of_window(modal):
            return  # the person is answering another question of this window
        if any(w.isVisible() and w.isWindow() and self._is_dialog_of_window(w) for w in app.topLevelWidgets()):
            return  # another dialog of the window is up
        self.window.activateWindow()
        QTimer.singleShot(50, self, self._settle)

    def _settle(self) -> None:
        """After the activation request: the window is active (told so directly where the platform still
        takes the closed dialog for the active window) and its keyboard goes to `home` unless held."""
        app = QApplication.instance()
        if not isValid(self.window) or not self.window.isVisible():
            return
        active = app.activeWindow()
        if active is not self.window and (active is None or not active.isVisible()):
            QApplication.setActiveWindow(self.window)
        focus = app.focusWidget()
        if focus is None or focus.window() is not self.window:
            self.home.setFocus(Qt.FocusReason.ActiveWindowFocusReason)
