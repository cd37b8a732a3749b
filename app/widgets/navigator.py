"""The navigator: the whole image small, with the canvas's visible part framed; click or drag to move there."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.core.view.overview import Overview


class Navigator(QWidget):
    """Follows a `Canvas` (its document and view); moving the frame recentres the canvas."""

    def __init__(self, canvas, parent: QWidget | None = None, max_side: int = 256):
        super().__init__(parent)
        self.canvas, self.max_side = canvas, max_side
        self.overview: Overview | None = None
        self._qimage: QImage | None = None
        self.setMinimumSize(120, 90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        for bar in (canvas.horizontalScrollBar(), canvas.verticalScrollBar()):
            bar.valueChanged.connect(self.update)
            bar.rangeChanged.connect(self.update)

    def sizeHint(self) -> QSize:
        return QSize(self.max_side, self.max_side * 3 // 4)

    def set_document(self, doc) -> None:
        """Show `doc`'s image (None clears)."""
        if doc is None:
            self.overview, self._qimage = None, None
        else:
            self.overview = Overview.of(doc.image, self.max_side)
            t = self.overview.thumb
            self._qimage = QImage(t.data, t.shape[1], t.shape[0], t.strides[0], QImage.Format.Format_RGB888).copy()
        self.update()

    def _placement(self) -> tuple[float, float, float]:
        """(scale, dx, dy): thumbnail pixels to widget pixels, the thumbnail centred and fitted."""
        th, tw = self.overview.thumb.shape[:2]
        s = min(self.width() / tw, self.height() / th)
        return s, (self.width() - tw * s) / 2, (self.height() - th * s) / 2

    def visible_rect(self) -> tuple[float, float, float, float] | None:
        """The part of the image the canvas shows, (y0, x0, y1, x1) in image pixels."""
        if self.overview is None:
            return None
        r = self.canvas.mapToScene(self.canvas.viewport().rect()).boundingRect()
        return (r.top(), r.left(), r.bottom(), r.right())

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 26, 30))
        if self.overview is None or self._qimage is None:
            p.end()
            return
        s, dx, dy = self._placement()
        th, tw = self.overview.thumb.shape[:2]
        p.drawImage(QRectF(dx, dy, tw * s, th * s), self._qimage)
        y0, x0, y1, x1 = self.overview.to_thumb(self.visible_rect())
        pen = QPen(QColor(255, 210, 60), 2)
        p.setPen(pen)
        p.drawRect(QRectF(dx + x0 * s, dy + y0 * s, (x1 - x0) * s, (y1 - y0) * s))
        p.end()

    def _move_to(self, pos: QPointF) -> None:
        if self.overview is None:
            return
        s, dx, dy = self._placement()
        y, x = self.overview.to_image(((pos.y() - dy) / s, (pos.x() - dx) / s))
        self.canvas.centerOn(QPointF(x, y))
        self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._move_to(event.position())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._move_to(event.position())
