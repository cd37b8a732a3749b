"""Small vector icons drawn with QPainter, so the app ships no image files and looks the same everywhere."""

from __future__ import annotations

import math
from functools import cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap, QPolygonF

INK = QColor(220, 223, 228)
ACCENT = QColor(86, 156, 240)

STATUS_COLORS = {
    "unlabelled": QColor(128, 134, 144),
    "predicted": QColor(76, 155, 232),
    "edited": QColor(240, 160, 48),
    "reviewed": QColor(76, 175, 80),
    "error": QColor(229, 83, 75),
}


def _canvas(size: int = 64) -> tuple[QPixmap, QPainter]:
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.scale(size / 32.0, size / 32.0)  # draw on a 32 x 32 grid
    return pix, p


def _pen(color: QColor = INK, width: float = 2.2) -> QPen:
    pen = QPen(color, width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _sparkle(cx: float, cy: float, r: float) -> QPainterPath:
    """A four-pointed star: "the model does this"."""
    pts = []
    for i in range(8):
        rr = r if i % 2 == 0 else r * 0.36
        a = i * math.pi / 4
        pts.append(QPointF(cx + rr * math.sin(a), cy - rr * math.cos(a)))
    path = QPainterPath()
    path.addPolygon(QPolygonF(pts))
    path.closeSubpath()
    return path


def _draw(name: str, p: QPainter) -> None:
    p.setPen(_pen())
    p.setBrush(Qt.BrushStyle.NoBrush)
    if name == "brush":
        p.setBrush(QBrush(INK))
        p.drawEllipse(QPointF(16, 16), 9, 9)
    elif name == "eraser":
        p.translate(16, 16)
        p.rotate(-40)
        p.drawRoundedRect(QRectF(-11, -6, 22, 12), 2, 2)
        p.setBrush(QBrush(INK))
        p.drawRoundedRect(QRectF(-11, -6, 8, 12), 2, 2)
    elif name == "fill":
        path = QPainterPath()
        path.moveTo(6, 14)
        path.lineTo(15, 5)
        path.lineTo(25, 15)
        path.lineTo(16, 24)
        path.closeSubpath()
        p.drawPath(path)
        p.setBrush(QBrush(ACCENT))
        p.setPen(Qt.PenStyle.NoPen)
        drop = QPainterPath()
        drop.moveTo(27, 18)
        drop.cubicTo(24, 23, 24, 27, 27, 27)
        drop.cubicTo(30, 27, 30, 23, 27, 18)
        p.drawPath(drop)
    elif name == "polygon":
        pts = [QPointF(16 + 11 * math.sin(a), 17 - 11 * math.cos(a)) for a in (0, 1.3, 2.5, 3.8, 5.0)]
        p.drawPolygon(QPolygonF(pts))
        p.setBrush(QBrush(INK))
        for q in pts:
            p.drawEllipse(q, 1.8, 1.8)
    elif name == "accept":
        p.setPen(_pen(QColor(110, 200, 120), 3.0))
        p.drawPolyline(QPolygonF([QPointF(7, 17), QPointF(13, 23), QPointF(25, 9)]))
    elif name == "accept_region":
        pen = _pen(width=1.6)
        pen.setStyle(Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.drawPolygon(QPolygonF([QPointF(4, 10), QPointF(18, 4), QPointF(28, 14), QPointF(20, 28), QPointF(6, 24)]))
        p.setPen(_pen(QColor(110, 200, 120), 2.6))
        p.drawPolyline(QPolygonF([QPointF(10, 17), QPointF(15, 21), QPointF(22, 12)]))
    elif name == "grabcut":
        pen = _pen(width=1.6)
        pen.setStyle(Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.drawRect(QRectF(4, 6, 24, 20))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(ACCENT))
        p.drawEllipse(QPointF(16, 16), 6.5, 5)
    elif name == "attention":
        path = QPainterPath()
        path.moveTo(3, 16)
        path.quadTo(16, 3, 29, 16)
        path.quadTo(16, 29, 3, 16)
        p.drawPath(path)
        p.setBrush(QBrush(ACCENT))
        p.drawEllipse(QPointF(16, 16), 4.5, 4.5)
    elif name in ("undo", "redo"):
        if name == "redo":
            p.translate(32, 0)
            p.scale(-1, 1)
        path = QPainterPath()
        path.moveTo(10, 12)
        path.lineTo(20, 12)
        path.cubicTo(28, 12, 28, 25, 20, 25)
        path.lineTo(12, 25)
        p.drawPath(path)
        p.drawPolyline(QPolygonF([QPointF(14, 7), QPointF(9, 12), QPointF(14, 17)]))
    elif name == "fit":
        for sx, sy in ((1, 1), (-1, 1), (1, -1), (-1, -1)):
            cx, cy = 16 - sx * 10, 16 - sy * 10
            p.drawPolyline(QPolygonF([QPointF(cx, cy + sy * 6), QPointF(cx, cy), QPointF(cx + sx * 6, cy)]))
    elif name == "segment":
        p.setBrush(QBrush(ACCENT))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawPath(_sparkle(16, 16, 11))
    elif name == "segment_all":
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(ACCENT))
        p.drawPath(_sparkle(11, 12, 7))
        p.drawPath(_sparkle(22, 21, 7))
    elif name == "open":
        path = QPainterPath()
        path.moveTo(4, 9)
        path.lineTo(12, 9)
        path.lineTo(15, 12)
        path.lineTo(27, 12)
        path.lineTo(27, 25)
        path.lineTo(4, 25)
        path.closeSubpath()
        p.drawPath(path)
    elif name == "save":
        p.drawRoundedRect(QRectF(6, 5, 20, 22), 2, 2)
        p.drawRect(QRectF(11, 5, 10, 7))
        p.drawRect(QRectF(10, 18, 12, 9))
    elif name == "next":
        p.drawPolyline(QPolygonF([QPointF(9, 7), QPointF(18, 16), QPointF(9, 25)]))
        p.drawPolyline(QPolygonF([QPointF(17, 7), QPointF(26, 16), QPointF(17, 25)]))
    elif name == "reviewed":
        p.setPen(_pen(STATUS_COLORS["reviewed"], 2.4))
        p.drawEllipse(QPointF(16, 16), 11, 11)
        p.drawPolyline(QPolygonF([QPointF(10, 16), QPointF(14.5, 20.5), QPointF(22, 12)]))
    elif name == "train":
        p.drawPolyline(QPolygonF([QPointF(4, 26), QPointF(11, 18), QPointF(17, 21), QPointF(27, 7)]))
        p.drawPolyline(QPolygonF([QPointF(21, 7), QPointF(27, 7), QPointF(27, 13)]))
    elif name == "stop":
        p.setBrush(QBrush(STATUS_COLORS["error"]))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawRoundedRect(QRectF(8, 8, 16, 16), 2, 2)
    elif name == "help":
        p.drawEllipse(QPointF(16, 16), 12, 12)
        p.setFont(p.font())
        f = p.font()
        f.setPixelSize(16)
        f.setBold(True)
        p.setFont(f)
        p.drawText(QRectF(4, 4, 24, 24), Qt.AlignmentFlag.AlignCenter, "?")
    elif name == "superpixels":
        p.setPen(_pen(width=1.6))
        cells = [QPolygonF([QPointF(x, y) for x, y in pts]) for pts in (
            ((4, 4), (17, 4), (14, 15), (4, 13)), ((17, 4), (28, 4), (28, 17), (14, 15)),
            ((4, 13), (14, 15), (12, 28), (4, 28)), ((14, 15), (28, 17), (28, 28), (12, 28)))]
        p.setBrush(QBrush(ACCENT))
        p.drawPolygon(cells[1])
        p.setBrush(Qt.BrushStyle.NoBrush)
        for cell in (cells[0], cells[2], cells[3]):
            p.drawPolygon(cell)
    elif name == "sam":
        p.setBrush(QBrush(QColor(80, 200, 255, 90)))
        p.drawEllipse(QPointF(17, 17), 10, 8)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(ACCENT))
        p.drawEllipse(QPointF(15, 16), 3.5, 3.5)
        p.setBrush(QBrush(INK))
        p.drawPath(_sparkle(6, 6, 5))
    else:
        raise KeyError(f"no icon named {name!r}")


@cache
def icon(name: str) -> QIcon:
    """The icon `name` (brush, eraser, fill, polygon, accept, accept_region, grabcut, attention, undo, ...)."""
    pix, p = _canvas()
    _draw(name, p)
    p.end()
    return QIcon(pix)


def swatch(color, size: int = 14, border: bool = True) -> QIcon:
    """A filled rounded square of `color` (RGB tuple or QColor)."""
    c = color if isinstance(color, QColor) else QColor(*color)
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QBrush(c))
    p.setPen(QPen(QColor(0, 0, 0, 120), 1) if border else Qt.PenStyle.NoPen)
    p.drawRoundedRect(QRectF(0.5, 0.5, size - 1, size - 1), 3, 3)
    p.end()
    return QIcon(pix)


@cache
def status_icon(status: str) -> QIcon:
    """A coloured dot for an image status (unlabelled, predicted, edited, reviewed, error)."""
    size = 12
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    color = STATUS_COLORS.get(status, STATUS_COLORS["unlabelled"])
    if status == "unlabelled":
        p.setPen(QPen(color, 1.6))
        p.setBrush(Qt.BrushStyle.NoBrush)
    else:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(color))
    p.drawEllipse(QRectF(1.5, 1.5, size - 3, size - 3))
    p.end()
    return QIcon(pix)
