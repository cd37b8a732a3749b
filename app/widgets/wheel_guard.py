"""The mouse wheel over a scrolling panel scrolls it: a combo box, spin box or slider that has not been
clicked (has no focus) passes the wheel to the panel instead of changing its value under the pointer, and so
does a view inside the panel that has nothing to scroll itself (a chart, which would otherwise take the wheel
for its own zoom)."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QScrollArea,
    QScrollBar,
    QWidget,
)

VALUE_WIDGETS = (QComboBox, QAbstractSpinBox, QAbstractSlider)


class WheelGuard(QObject):
    """Installed on the value widgets and the views' viewports inside `area` (those there now)."""

    def __init__(self, area: QScrollArea):
        super().__init__(area)
        self.area = area
        for w in area.widget().findChildren(QWidget):  # (the area's own scroll bars are not inside its widget)
            if isinstance(w, VALUE_WIDGETS) and not isinstance(w, QScrollBar):  # a view's bars scroll the view
                w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # a wheel alone does not focus it
                w.installEventFilter(self)
            elif isinstance(w, QAbstractScrollArea) and not _inside_value_widget(w):  # (not a combo box's list)
                w.viewport().installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Wheel and isinstance(obj, QWidget) and self._passes_on(obj):
            QCoreApplication.sendEvent(self.area.verticalScrollBar(), event)
            return True
        return False

    @staticmethod
    def _passes_on(widget: QWidget) -> bool:
        if isinstance(widget, VALUE_WIDGETS):
            return not widget.hasFocus()
        view = widget.parentWidget()  # a viewport's view
        return isinstance(view, QAbstractScrollArea) and all(
            bar.minimum() == bar.maximum() for bar in (view.verticalScrollBar(), view.horizontalScrollBar()))


def _inside_value_widget(widget: QWidget) -> bool:
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, VALUE_WIDGETS):
            return True
        parent = parent.parentWidget()
    return False
