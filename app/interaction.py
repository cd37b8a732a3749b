"""What the mouse does on the canvas: one small class per tool, each a press/move/release sequence.

A tool turns mouse positions (continuous image coordinates: scene x, y) into calls on the document
through the pure functions of `app.core.tools`, and draws its own preview (brush outline, polygon,
box). It reaches the rest of the app through its `editor` (the current document, the class to paint,
the brush radius, background jobs and messages).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QKeyEvent, QMouseEvent, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPathItem, QGraphicsRectItem

from app.core import tools

ERASE = 255
PICK_A_CLASS = "Pick a class first (keys 1-9 or the class list)"


def _point(pos: QPointF) -> tuple[float, float]:
    return (pos.y(), pos.x())


def _preview_pen(color: QColor | None = None, dashed: bool = False, width: float = 1.5) -> QPen:
    pen = QPen(color if color is not None else QColor(255, 255, 255), width)
    pen.setCosmetic(True)
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


class Tool:
    """The default does nothing; subclasses override what they use."""

    shortcut = ""
    title = ""
    hint = ""
    sized = False
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, editor):
        self.editor = editor

    @property
    def canvas(self):
        return self.editor.canvas

    @property
    def doc(self):
        return self.editor.doc

    def press(self, pos: QPointF, event: QMouseEvent) -> None: ...
    def move(self, pos: QPointF, event: QMouseEvent) -> None: ...
    def release(self, pos: QPointF, event: QMouseEvent) -> None: ...
    def double_click(self, pos: QPointF, event: QMouseEvent) -> None: ...
    def leave(self) -> None: ...

    def key(self, event: QKeyEvent) -> bool:
        return False

    def cancel(self) -> None:
        """Drop any half-made gesture (switching tool or image)."""


class BrushTool(Tool):
    """Paint the current class along the mouse path; right button (or the eraser) writes 255."""

    shortcut = "B"
    title = "Brush"
    hint = "Drag to paint the selected class; right-drag erases. [ and ] change the size."
    sized = True
    erase = False

    def __init__(self, editor):
        super().__init__(editor)
        self._last: tuple[float, float] | None = None
        self._value = 0
        self._outline: QGraphicsEllipseItem | None = None

    def press(self, pos, event):
        if self.doc is None:
            return
        erase = self.erase or event.button() == Qt.MouseButton.RightButton
        self._value = ERASE if erase else self.editor.current_class
        if self._value is None:
            self.editor.message.emit(PICK_A_CLASS)
            return
        self.doc.begin_stroke()
        self._last = _point(pos)
        self._paint(self._last, self._last)
        self._show_outline(pos)

    def move(self, pos, event):
        self._show_outline(pos)
        if self._last is None:
            return
        p = _point(pos)
        self._paint(self._last, p)
        self._last = p

    def release(self, pos, event):
        if self._last is None:
            return
        self._paint(self._last, _point(pos))
        self._last = None
        self.doc.end_stroke()

    def _paint(self, p0, p1) -> None:
        crop = tools.brush_segment(self.doc.shape, p0, p1, self.editor.brush_radius)
        if crop is not None:
            self.doc.apply(crop[0], crop[1], self._value)

    def _show_outline(self, pos: QPointF) -> None:
        r = self.editor.brush_radius
        if self._outline is None or self._outline.scene() is None:
            self._outline = QGraphicsEllipseItem()
            self._outline.setPen(_preview_pen(QColor(255, 255, 255, 220)))
            self.canvas.add_preview(self._outline)
        self._outline.setRect(QRectF(pos.x() - r, pos.y() - r, 2 * r, 2 * r))
        self._outline.setVisible(True)

    def leave(self):
        if self._outline is not None and self._outline.scene() is not None:
            self._outline.setVisible(False)

    def cancel(self):
        if self._last is not None and self.doc is not None:
            self.doc.end_stroke()
        self._last = None
        if self._outline is not None and self._outline.scene() is not None:
            self._outline.scene().removeItem(self._outline)
        self._outline = None


class EraserTool(BrushTool):
    shortcut = "E"
    title = "Eraser"
    hint = "Drag to clear labels back to 'not labelled'. [ and ] change the size."
    erase = True


class FillTool(Tool):
    """Flood-fill the 4-connected region under the click with the current class (right click: erase)."""

    shortcut = "F"
    title = "Fill"
    hint = "Click to fill the connected region of equal labels with the selected class; right-click clears it."

    def press(self, pos, event):
        if self.doc is None:
            return
        value = ERASE if event.button() == Qt.MouseButton.RightButton else self.editor.current_class
        if value is None:
            self.editor.message.emit(PICK_A_CLASS)
            return
        crop = tools.flood_fill(self.doc.labels, _point(pos))
        if crop is not None:
            self.doc.paint(crop[0], crop[1], value)


class PolygonTool(Tool):
    """Click corners; double-click, Enter or right-click closes and fills; Esc cancels; Backspace undoes a corner."""

    shortcut = "P"
    title = "Polygon"
    hint = ("Click to add corners; double-click, Enter or right-click closes and fills with the selected class. "
            "Esc cancels, Backspace removes the last corner.")

    def __init__(self, editor):
        super().__init__(editor)
        self.points: list[QPointF] = []
        self._path: QGraphicsPathItem | None = None
        self._hover: QPointF | None = None

    def press(self, pos, event):
        if self.doc is None:
            return
        if event.button() == Qt.MouseButton.RightButton:
            self.close()
            return
        self.points.append(QPointF(pos))
        self._update()

    def double_click(self, pos, event):
        if not self.points or (self.points[-1] - pos).manhattanLength() > 1e-6:
            self.points.append(QPointF(pos))
        self.close()

    def move(self, pos, event):
        self._hover = QPointF(pos)
        if self.points:
            self._update()

    def key(self, event):
        k = event.key()
        if k in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.points:
            self.close()
            return True
        if k == Qt.Key.Key_Escape and self.points:
            self.cancel()
            return True
        if k == Qt.Key.Key_Backspace and self.points:
            self.points.pop()
            self._update()
            return True
        return False

    def close(self) -> None:
        pts = [(p.y(), p.x()) for p in self.points]
        self.cancel()
        if len(pts) >= 3 and self.doc is not None:
            crop = tools.polygon_mask(self.doc.shape, pts)
            if crop is not None:
                self.fill(crop)

    def fill(self, crop) -> None:
        value = self.editor.current_class
        if value is None:
            self.editor.message.emit(PICK_A_CLASS)
            return
        self.doc.paint(crop[0], crop[1], value)

    def _update(self) -> None:
        if self._path is None or self._path.scene() is None:
            self._path = QGraphicsPathItem()
            self._path.setPen(_preview_pen(QColor(255, 255, 255)))
            self._path.setBrush(QBrush(QColor(255, 255, 255, 40)))
            self.canvas.add_preview(self._path)
        path = QPainterPath()
        if self.points:
            path.moveTo(self.points[0])
            for p in self.points[1:]:
                path.lineTo(p)
            if self._hover is not None:
                path.lineTo(self._hover)
        self._path.setPath(path)

    def cancel(self):
        self.points = []
        if self._path is not None and self._path.scene() is not None:
            self._path.scene().removeItem(self._path)
        self._path = None


class AcceptRegionTool(PolygonTool):
    """Draw a polygon; the model's proposal is accepted as labels inside it."""

    shortcut = "R"
    title = "Accept proposal in region"
    hint = "Draw a polygon around the part of the proposal you agree with; closing it writes those labels."

    def fill(self, crop) -> None:
        if self.doc.proposal is None:
            self.editor.message.emit("This image has no proposal yet: segment it first (Ctrl+R)")
            return
        values = tools.accept_proposal(self.doc.proposal, self.doc.labels, crop)
        if values is not None:
            self.doc.paint(*values)


class GrabCutTool(Tool):
    """Drag a box around an object; GrabCut finds it and paints it with the current class."""

    shortcut = "G"
    title = "GrabCut"
    hint = "Drag a box around one object; it is cut out and painted with the selected class."

    def __init__(self, editor):
        super().__init__(editor)
        self._start: QPointF | None = None
        self._rect: QGraphicsRectItem | None = None

    def press(self, pos, event):
        if self.doc is None or event.button() != Qt.MouseButton.LeftButton:
            return
        if self.editor.current_class is None:
            self.editor.message.emit(PICK_A_CLASS)
            return
        self._start = QPointF(pos)
        self._rect = QGraphicsRectItem()
        self._rect.setPen(_preview_pen(QColor(255, 255, 255), dashed=True))
        self.canvas.add_preview(self._rect)
        self._rect.setRect(QRectF(pos, pos))

    def move(self, pos, event):
        if self._start is not None:
            self._rect.setRect(QRectF(self._start, pos).normalized())

    def release(self, pos, event):
        if self._start is None:
            return
        r = QRectF(self._start, pos).normalized()
        self.cancel()
        h, w = self.doc.shape
        box = (max(0, int(r.top())), max(0, int(r.left())), min(h, int(r.bottom()) + 1), min(w, int(r.right()) + 1))
        if box[2] - box[0] < 3 or box[3] - box[1] < 3:
            self.editor.message.emit("Drag a larger box around the object")
            return
        self.editor.run_grabcut(box)

    def cancel(self):
        self._start = None
        if self._rect is not None and self._rect.scene() is not None:
            self._rect.scene().removeItem(self._rect)
        self._rect = None


class AttentionTool(Tool):
    """Click a pixel: the model's explanation maps for it appear in the attention panel and on the canvas."""

    shortcut = "A"
    title = "Attention"
    hint = "Click a pixel to see where the model looks when it labels it (CAM, attention layers, codewords)."
    cursor = Qt.CursorShape.PointingHandCursor

    def press(self, pos, event):
        pixel = self.canvas.pixel_at(pos)
        if pixel is not None and event.button() == Qt.MouseButton.LeftButton:
            self.editor.explain_at(pixel)


TOOLS: tuple[type[Tool], ...] = (BrushTool, EraserTool, FillTool, PolygonTool, AcceptRegionTool, GrabCutTool,
                                 AttentionTool)
