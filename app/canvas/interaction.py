"""The canvas's side of the tools: Qt mouse and key events in, a gesture's preview drawn.

What a tool does lives in `app.core.editing.gestures` and `app.core.smart.smart_gestures` (Qt-free, tested without
a QApplication); a `Tool` here only converts events (scene positions, buttons, keys) for its gesture
and mirrors `preview()` (outlines, polygons, boxes, masks) with graphics items above the layers.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QKeyEvent, QMouseEvent, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
)

from app.core.editing import gestures

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
        self.gesture.on_change = self._show
        self._items: list[tuple[gestures.Preview, QGraphicsItem]] = []  # what is drawn, per preview

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
        """Mirror the gesture's preview: one graphics item per `Preview`, reused while its kind and colour stay."""
        shown = self.gesture.preview()
        previews = () if shown is None else shown if isinstance(shown, tuple) else (shown,)
        for i, preview in enumerate(previews):
            old = None
            if i < len(self._items):
                old, item = self._items[i]
                if item.scene() is None or (old.kind, old.color) != (preview.kind, preview.color):
                    self._drop(i)
                    old = None
            if old is None:
                item = self.canvas.add_preview(_new_item(preview))
                self._items.append((preview, item))
            else:
                self._items[i] = (preview, item)
            _update_item(item, preview, old)
        self._drop(len(previews))

    def _drop(self, index: int) -> None:
        """Remove preview item `index` and every one after it."""
        for _preview, item in self._items[index:]:
            if item.scene() is not None:
                item.scene().removeItem(item)
        del self._items[index:]

    @property
    def preview_items(self) -> list[QGraphicsItem]:
        """The preview items now shown, in drawing order (for tests)."""
        return [item for _preview, item in self._items]

    @property
    def _path(self) -> QGraphicsItem | None:
        """The first preview item now shown, if any (for tests)."""
        return self._items[0][1] if self._items else None


def mask_pixmap(mask: np.ndarray, rgba: tuple[int, int, int, int]) -> QPixmap:
    """A bool mask as a pixmap: `rgba` where set, transparent elsewhere."""
    img = np.zeros(mask.shape + (4,), np.uint8)
    img[mask] = rgba
    q = QImage(img.data, img.shape[1], img.shape[0], img.strides[0], QImage.Format.Format_RGBA8888)
    return QPixmap.fromImage(q.copy())


def _new_item(preview: gestures.Preview) -> QGraphicsItem:
    if preview.kind == "mask":
        return QGraphicsPixmapItem()
    item = {"circle": QGraphicsEllipseItem, "polygon": QGraphicsPathItem, "box": QGraphicsRectItem}[preview.kind]()
    item.setPen(_preview_pen(QColor(*preview.color) if preview.color else None, dashed=preview.kind == "box"))
    if preview.kind == "polygon":
        item.setBrush(QBrush(QColor(255, 255, 255, 40)))
    return item


def _update_item(item: QGraphicsItem, preview: gestures.Preview, shown: gestures.Preview | None) -> None:
    """Set `item`'s geometry from `preview` (`shown`: what it showed, None when new); a mask's pixmap is
    made again only for a new mask."""
    if preview.kind == "mask":
        if shown is None or shown.mask is not preview.mask:
            item.setPixmap(mask_pixmap(preview.mask, preview.color or (255, 255, 255, 110)))
    elif preview.kind == "circle":
        (y, x), r = preview.points[0], preview.radius
        item.setRect(QRectF(x - r, y - r, 2 * r, 2 * r))
    elif preview.kind == "box":
        item.setRect(QRectF(_qt(preview.points[0]), _qt(preview.points[1])).normalized())
    else:
        path = QPainterPath(_qt(preview.points[0]))
        for p in preview.points[1:]:
            path.lineTo(_qt(p))
        item.setPath(path)


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
