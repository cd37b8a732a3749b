"""The canvas: a QGraphicsView showing one document's image and overlays; the active tool gets the mouse.

Layers, bottom to top: the image, the model's proposal (where nothing is labelled), the labels, a heat
map (low confidence or entropy), the attention map, and the tool's own preview items. Overlays are
tiled (see `app.canvas.tiles`) and repainted only where the document reports a change.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QKeyEvent, QMouseEvent, QPainter, QPainterPath, QPen, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsItem, QGraphicsPathItem, QGraphicsScene, QGraphicsView

from app.canvas.tiles import HeatLayer, IndexLayer, Region, TiledLayer, image_layer, rgba_lut, scale_to_unit

MIN_ZOOM, MAX_ZOOM = 1 / 64, 64.0
GRID_FROM = 8.0  # from this zoom on, a grid outlines every image pixel
HEAT_MODES = ("none", "uncertainty", "entropy")


class Canvas(QGraphicsView):
    """Shows a `LabelDocument`; zoom with the wheel (around the cursor), pan with space- or middle-drag."""

    cursorMoved = Signal(object)  # (y, x) image pixel under the mouse, or None outside the image
    zoomChanged = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QBrush(QColor(38, 40, 44)))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # pan with space- or middle-drag
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)  # zoom_by keeps its own anchor
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.doc = None
        self.tool = None
        self.classes: list = []
        self.image: TiledLayer | None = None
        self.proposal: IndexLayer | None = None
        self.labels: IndexLayer | None = None
        self.heat: HeatLayer | None = None
        self.attention: HeatLayer | None = None
        self.heat_mode = "none"
        self.label_opacity = 0.55
        self.proposal_opacity = 0.6  # half its pixels are hatched out
        self.proposal_visible = True
        self.attention_opacity = 0.7
        self._pan_from: QPointF | None = None
        self._space = False
        self.marker: QGraphicsPathItem | None = None
        self.placeholder = "Open a folder of images to begin (Ctrl+O)"
        self._fitted = False  # keep the whole image in view on resize until the person zooms or pans

    # -- document and layers -------------------------------------------------------------------------
    def set_document(self, doc, classes: Sequence) -> None:
        """Show `doc` (a LabelDocument, or None for an empty canvas) coloured by `classes`."""
        if self.doc is not None and self._on_region in self.doc.listeners:
            self.doc.listeners.remove(self._on_region)
        if self.tool is not None:
            self.tool.cancel()
        self.set_marker(None)
        scene = self.scene()
        for item in (self.image, self.proposal, self.labels, self.heat, self.attention):
            if item is not None:
                scene.removeItem(item)
                item.release()  # no reference cycle keeps the old image's arrays alive
        self.image = self.proposal = self.labels = self.heat = self.attention = None
        self.doc = doc
        self.classes = list(classes)
        if doc is None:
            scene.setSceneRect(QRectF())
            return
        h, w = doc.shape
        self.image = image_layer(doc.image)
        self.image.setZValue(0)
        lut = self._class_lut()
        self.proposal = IndexLayer((h, w), lambda: self.doc.proposal, self._proposal_lut(),
                                   mask=lambda: self.doc.labels, hatch=True)
        self.proposal.setZValue(1)
        self.labels = IndexLayer((h, w), lambda: self.doc.labels, lut)
        self.labels.setZValue(2)
        for item in (self.image, self.proposal, self.labels):
            scene.addItem(item)
        self._apply_opacity()
        self._rebuild_heat()
        doc.listeners.append(self._on_region)
        margin = max(h, w) * 4.0  # room to pan past the edges and to zoom around any point
        scene.setSceneRect(QRectF(-margin, -margin, w + 2 * margin, h + 2 * margin))
        self.fit()

    def set_classes(self, classes: Sequence) -> None:
        self.classes = list(classes)
        if self.labels is not None:
            self.labels.set_lut(self._class_lut())
            self.proposal.set_lut(self._proposal_lut())

    def _class_lut(self) -> np.ndarray:
        return rgba_lut([tuple(c.color) for c in self.classes])

    def _proposal_lut(self) -> np.ndarray:
        """The proposal's colours: the classes' lightened towards white (and hatched by the layer), so what is
        only proposed never looks like an accepted label."""
        return rgba_lut([tuple(round(v + (255 - v) * 0.35) for v in c.color) for c in self.classes])

    def _on_region(self, region: Region) -> None:
        if self.doc is None:
            return
        h, w = self.doc.shape
        if region is None or tuple(region) == (0, 0, h, w):
            self.refresh()
            return
        self.labels.invalidate(region)
        self.proposal.invalidate(region)

    def refresh(self) -> None:
        """Redraw every overlay from the document (after a new proposal, say)."""
        if self.doc is None:
            return
        self.labels.invalidate()
        self.proposal.invalidate()
        self._rebuild_heat()

    # -- view options ---------------------------------------------------------------------------------
    def set_label_opacity(self, value: float) -> None:
        self.label_opacity = value
        self._apply_opacity()

    def set_proposal_opacity(self, value: float) -> None:
        self.proposal_opacity = value
        self._apply_opacity()

    def set_proposal_visible(self, visible: bool) -> None:
        self.proposal_visible = visible
        self._apply_opacity()

    def set_heat_mode(self, mode: str) -> None:
        if mode not in HEAT_MODES:
            raise ValueError(f"heat map mode must be one of {', '.join(HEAT_MODES)}, got {mode!r}")
        self.heat_mode = mode
        self._rebuild_heat()

    def set_attention_opacity(self, value: float) -> None:
        self.attention_opacity = value
        if self.attention is not None:
            self.attention.setOpacity(value)

    def _apply_opacity(self) -> None:
        if self.labels is not None:
            self.labels.setOpacity(self.label_opacity)
            self.proposal.setOpacity(self.proposal_opacity)
            self.proposal.setVisible(self.proposal_visible)

    def _rebuild_heat(self) -> None:
        if self.heat is not None:
            self.scene().removeItem(self.heat)
            self.heat.release()
            self.heat = None
        doc = self.doc
        if doc is None or self.heat_mode == "none":
            return
        if self.heat_mode == "uncertainty" and doc.confidence is not None:
            self.heat = HeatLayer(doc.shape, doc.confidence, 1.0, 0.0)  # 1 - confidence: hot where unsure
        elif self.heat_mode == "entropy" and doc.entropy is not None:
            self.heat = HeatLayer(doc.shape, doc.entropy, *scale_to_unit(doc.entropy))
        if self.heat is not None:
            self.heat.setZValue(3)
            self.heat.setOpacity(0.8)
            self.scene().addItem(self.heat)

    def set_attention(self, values: np.ndarray | None, origin: tuple[int, int] = (0, 0)) -> None:
        """Show a float map (placed at image pixel `origin`) as the attention heat map; None hides it."""
        if self.attention is not None:
            self.scene().removeItem(self.attention)
            self.attention.release()
            self.attention = None
        if values is None or self.doc is None:
            return
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        self.attention = HeatLayer(self.doc.shape, values, lo, hi, origin=origin)
        self.attention.setZValue(4)
        self.attention.setOpacity(self.attention_opacity)
        self.scene().addItem(self.attention)

    def set_marker(self, pixel: tuple[int, int] | None) -> None:
        """Mark image pixel (y, x) with a small crosshair of constant screen size (None removes it)."""
        if self.marker is not None and self.marker.scene() is not None:
            self.scene().removeItem(self.marker)
        self.marker = None
        if pixel is None or self.doc is None:
            return
        path = QPainterPath()
        for a, b in (((-9, 0), (-3, 0)), ((3, 0), (9, 0)), ((0, -9), (0, -3)), ((0, 3), (0, 9))):
            path.moveTo(*a)
            path.lineTo(*b)
        path.addEllipse(QPointF(0, 0), 5, 5)
        self.marker = QGraphicsPathItem(path)
        pen = QPen(QColor(255, 255, 255), 2)
        pen.setCosmetic(True)
        self.marker.setPen(pen)
        self.marker.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.marker.setPos(pixel[1] + 0.5, pixel[0] + 0.5)
        self.marker.setZValue(9)
        self.scene().addItem(self.marker)

    def add_preview(self, item: QGraphicsItem) -> QGraphicsItem:
        """Add a tool's preview item (brush outline, polygon, box) above every layer."""
        item.setZValue(10)
        self.scene().addItem(item)
        return item

    # -- zoom and pan ---------------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        """Show the whole image."""
        if self.doc is None:
            return
        h, w = self.doc.shape
        self.fitInView(QRectF(0, 0, w, h), Qt.AspectRatioMode.KeepAspectRatio)
        self._fitted = True
        self.zoomChanged.emit(self.zoom)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom by `factor`, keeping the image point under `anchor` (viewport pixels; default: the centre) fixed."""
        target = min(MAX_ZOOM, max(MIN_ZOOM, self.zoom * factor))
        factor = target / self.zoom
        if abs(factor - 1.0) < 1e-6:
            return
        self._fitted = False
        if anchor is None:
            anchor = QPointF(self.viewport().rect().center())
        before = self._scene_at(anchor)
        self.scale(factor, factor)
        after = self._scene_at(anchor)
        dx, dy = (before.x() - after.x()) * self.zoom, (before.y() - after.y()) * self.zoom
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + round(dx))
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + round(dy))
        self.zoomChanged.emit(self.zoom)

    def _scene_at(self, viewport_pos: QPointF) -> QPointF:
        return self.viewportTransform().inverted()[0].map(QPointF(viewport_pos))

    def set_zoom(self, zoom: float) -> None:
        self.zoom_by(zoom / self.zoom)

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.pixelDelta().y()
        if delta:
            self.zoom_by(1.0015 ** delta, event.position())  # one notch (120) is about x1.2; trackpads glide
        event.accept()

    def image_pos(self, view_pos) -> QPointF:
        """Image coordinates (x right, y down; pixel (y, x) covers [x, x+1) x [y, y+1)) of a view point."""
        return self.mapToScene(view_pos.toPoint() if hasattr(view_pos, "toPoint") else view_pos)

    def pixel_at(self, pos: QPointF) -> tuple[int, int] | None:
        if self.doc is None:
            return None
        y, x = int(np.floor(pos.y())), int(np.floor(pos.x()))
        h, w = self.doc.shape
        return (y, x) if 0 <= y < h and 0 <= x < w else None

    # -- mouse and keys -------------------------------------------------------------------------------
    def _panning(self, event: QMouseEvent) -> bool:
        return event.button() == Qt.MouseButton.MiddleButton or (
            self._space and event.button() == Qt.MouseButton.LeftButton)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self._panning(event):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if self.tool is not None and self.doc is not None and event.button() in (
                Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            self.tool.press(self.image_pos(event.position()), event)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self._fitted = False
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
            event.accept()
            return
        pos = self.image_pos(event.position())
        self.cursorMoved.emit(self.pixel_at(pos))
        if self.tool is not None and self.doc is not None:
            self.tool.move(pos, event)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and (event.button() == Qt.MouseButton.MiddleButton
                                           or event.button() == Qt.MouseButton.LeftButton):
            self._pan_from = None
            self._restore_cursor()
            event.accept()
            return
        if self.tool is not None and self.doc is not None:
            self.tool.release(self.image_pos(event.position()), event)
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self.tool is not None and self.doc is not None and event.button() == Qt.MouseButton.LeftButton:
            self.tool.double_click(self.image_pos(event.position()), event)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def leaveEvent(self, event) -> None:
        self.cursorMoved.emit(None)
        if self.tool is not None:
            self.tool.leave()
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        if self.tool is not None and self.tool.key(event):
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self._pan_from = None
            self._restore_cursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def set_tool(self, tool) -> None:
        if self.tool is not None:
            self.tool.cancel()
        self.tool = tool
        self._restore_cursor()

    def _restore_cursor(self) -> None:
        cursor = self.tool.cursor if self.tool is not None else Qt.CursorShape.ArrowCursor
        self.viewport().setCursor(cursor)

    def set_placeholder(self, text: str) -> None:
        """What the empty canvas says (no image open, an image loading, an image that cannot be read)."""
        self.placeholder = text
        self.viewport().update()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        """At high zoom, a faint grid between image pixels (over the layers, under nothing else)."""
        super().drawForeground(painter, rect)
        if self.doc is None or self.zoom < GRID_FROM:
            return
        h, w = self.doc.shape
        area = QRectF(0, 0, w, h).intersected(rect)
        if area.isEmpty():
            return
        x0, x1 = max(0, int(area.left())), min(w, int(np.ceil(area.right())))
        y0, y1 = max(0, int(area.top())), min(h, int(np.ceil(area.bottom())))
        pen = QPen(QColor(0, 0, 0, 70), 1)
        pen.setCosmetic(True)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(pen)
        lines = [QLineF(x, y0, x, y1) for x in range(x0, x1 + 1)] + [QLineF(x0, y, x1, y) for y in range(y0, y1 + 1)]
        painter.drawLines(lines)
        painter.restore()

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        super().drawBackground(painter, rect)
        if self.doc is not None:
            h, w = self.doc.shape
            painter.fillRect(QRectF(0, 0, w, h).intersected(rect), QColor(20, 20, 22))
        elif self.placeholder:
            painter.save()
            painter.resetTransform()
            painter.setPen(QColor(150, 156, 164))
            font = painter.font()
            font.setPointSizeF(font.pointSizeF() * 1.25)
            painter.setFont(font)
            painter.drawText(QRectF(self.viewport().rect()).adjusted(40, 40, -40, -40),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            painter.restore()
