"""The mouse wheel over a scrolling panel scrolls it: a combo box, spin box or slider that has not been
clicked (has no focus) passes the wheel to the panel instead of changing its value under the pointer."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSlider, QAbstractSpinBox, QComboBox, QScrollArea, QWidget

VALUE_WIDGETS = (QComboBox, QAbstractSpinBox, QAbstractSlider)


class WheelGuard(QObject):
    """Installed on the value widgets inside `area` (those there now)."""

    def __init__(self, area: QScrollArea):
        super().__init__(area)
        self.area = area
        for w in area.widget().findChildren(QWidget):
            if isinstance(w, VALUE_WIDGETS):  # (the area's own scroll bars are not inside its widget)
                w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # a wheel alone does not focus it
                w.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Wheel and isinstance(obj, QWidget) and not obj.hasFocus():
            QCoreApplication.sendEvent(self.area.verticalScrollBar(), event)
            return True
        return False
