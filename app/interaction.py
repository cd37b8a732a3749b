"""The canvas's side of the tools: Qt mouse and key events in, a gesture's preview drawn.

What a tool does lives in `app.core.gestures` (Qt-free, tested without a QApplication); a `Tool` here
only converts events (scene positions, buttons, keys) for its gesture and mirrors `preview()` with
graphics items above the layers.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QKeyEvent, QMouseEvent, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QGraphicsPathItem, QGraphicsRectItem

from app.core import gestures

ERASE = 255
BUTTONS = {Qt.MouseButton.LeftButton: gestures.LEFT, Qt.MouseButton.RightButton: gestures.RIGHT}
KEYS = {Qt.Key.Key_Return: "enter", Qt.Key.Key_Enter: "enter", Qt.Key.Key_Escape: "escape",
        Qt.Key.Key_Backspace: "backspace"}


def _point(pos: QPointF) -> gestures.Point:
    return (pos.y(), pos.x())


def _qt(p: gestures.Point) -> QPointF:
    return QPointF(p[1], p[0])


def _preview_pen(color: QColor | None = None, dashed: bool = False, width: float = 1.5) -> QPen:
    """A screen-width pen for preview items (white unless `color`)."""
    pen = QPen(color if color is not None else QColor(255, 255, 255, 230), width)
    pen.setCosmetic(True)
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


class Tool:
    """One gesture on the canvas of `editor` (which is also the gesture's context)."""

    gesture_class: type[gestures.Gesture] = gestures.Gesture
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, editor):
        self.editor = editor
        self.gesture = self.gesture_class(editor)
        self._item: QGraphicsItem | None = None
        self._kind: str | None = None

    shortcut = title = hint = ""
    sized = False

    @property
    def canvas(self):
        return self.editor.canvas

    @property
    def doc(self):
        return self.editor.doc

    @property
    def points(self) -> list[QPointF]:
        """The polygon's corners so far (polygon tools)."""
        return [_qt(p) for p in getattr(self.gesture, "points", [])]

    def press(self, pos: QPointF, event: QMouseEvent) -> None:
        button = BUTTONS.get(event.button())
        if button is not None:
            self.gesture.press(_point(pos), button)
        self._show()

    def move(self, pos: QPointF, event: QMouseEvent) -> None:
        self.gesture.move(_point(pos))
        self._show()

    def release(self, pos: QPointF, event: QMouseEvent) -> None:
        button = BUTTONS.get(event.button())
        if button is not None:
            self.gesture.release(_point(pos), button)
        self._show()

    def double_click(self, pos: QPointF, event: QMouseEvent) -> None:
        button = BUTTONS.get(event.button())
        if button is not None:
            self.gesture.double_click(_point(pos), button)
        self._show()

    def leave(self) -> None:
        self.gesture.leave()
        self._show()

    def key(self, event: QKeyEvent) -> bool:
        name = KEYS.get(Qt.Key(event.key()))
        used = name is not None and self.gesture.key(name)
        self._show()
        return used

    def cancel(self) -> None:
        self.gesture.cancel()
        self._show()

    # -- preview --------------------------------------------------------------------------------------
    def _show(self) -> None:
        preview = self.gesture.preview()
        if preview is None or (self._item is not None and (self._item.scene() is None or self._kind != preview.kind)):
            self._drop()
        if preview is None:
            return
        if self._item is None:
            self._item = {"circle": QGraphicsEllipseItem, "polygon": QGraphicsPathItem,
                          "box": QGraphicsRectItem}[preview.kind]()
            self._item.setPen(_preview_pen(dashed=preview.kind == "box"))
            if preview.kind == "polygon":
                self._item.setBrush(QBrush(QColor(255, 255, 255, 40)))
            self._kind = preview.kind
            self.canvas.add_preview(self._item)
        if preview.kind == "circle":
            (y, x), r = preview.points[0], preview.radius
            self._item.setRect(QRectF(x - r, y - r, 2 * r, 2 * r))
        elif preview.kind == "box":
            self._item.setRect(QRectF(_qt(preview.points[0]), _qt(preview.points[1])).normalized())
        else:
            path = QPainterPath(_qt(preview.points[0]))
            for p in preview.points[1:]:
                path.lineTo(_qt(p))
            self._item.setPath(path)

    def _drop(self) -> None:
        if self._item is not None and self._item.scene() is not None:
            self._item.scene().removeItem(self._item)
        self._item = self._kind = None

    @property
    def _path(self) -> QGraphicsItem | None:
        """The preview item now shown, if any (for tests)."""
        return self._item


def _tool(gesture: type[gestures.Gesture], cursor=Qt.CursorShape.CrossCursor) -> type[Tool]:
    attrs = {"gesture_class": gesture, "cursor": cursor, "shortcut": gesture.shortcut, "title": gesture.title,
             "hint": gesture.hint, "sized": gesture.sized, "__doc__": gesture.__doc__}
    return type(gesture.__name__ + "Tool", (Tool,), attrs)


BrushTool = _tool(gestures.Brush)
EraserTool = _tool(gestures.Eraser)
FillTool = _tool(gestures.Fill)
PolygonTool = _tool(gestures.Polygon)
AcceptRegionTool = _tool(gestures.AcceptRegion)
GrabCutTool = _tool(gestures.GrabCut)
AttentionTool = _tool(gestures.Attention, Qt.CursorShape.PointingHandCursor)

TOOLS: tuple[type[Tool], ...] = (BrushTool, EraserTool, FillTool, PolygonTool, AcceptRegionTool, GrabCutTool,
                                 AttentionTool)
