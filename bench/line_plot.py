"""A line plot written as a PNG with OpenCV: axes with round ticks, a few series, marked x positions, a legend."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
INK, GRID, MARK = (40, 40, 40), (225, 225, 225), (160, 160, 160)
COLORS = ((200, 110, 30), (40, 140, 230), (60, 170, 60), (170, 60, 170))  # BGR


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    return [first + i * step for i in range(int(math.ceil((hi - first) / step)) + 1)]


def line_plot(path: str | Path, x: Sequence[float], series: Mapping[str, Sequence[float]], *, title: str,
              xlabel: str, ylabel: str, marks: Sequence[float] = (), mark_label: str = "",
              size: tuple[int, int] = (960, 540)) -> Path:
    """Write `series` (name -> y values, one per `x`) as lines; vertical dashed lines at `marks`."""
    w, h = size
    left, right, top, bottom = 80, 24, 48, 64
    img = np.full((h, w, 3), 255, np.uint8)
    ys = [v for values in series.values() for v in values if v is not None and math.isfinite(v)]
    yticks = nice_ticks(0.0, max(ys, default=1.0))
    xticks = nice_ticks(min(x, default=0), max(x, default=1), count=10)
    x0, x1, y0, y1 = xticks[0], xticks[-1], yticks[0], yticks[-1]

    def px(xv: float, yv: float) -> tuple[int, int]:
        return (int(round(left + (xv - x0) / (x1 - x0) * (w - left - right))),
                int(round(h - bottom - (yv - y0) / (y1 - y0) * (h - top - bottom))))

    for t in yticks:
        a, b = px(x0, t), px(x1, t)
        cv2.line(img, a, b, GRID, 1)
        _text(img, f"{t:g}", (a[0] - 8, a[1] + 5), align="right")
    for t in xticks:
        a = px(t, y0)
        cv2.line(img, a, (a[0], a[1] + 5), INK, 1)
        _text(img, f"{t:g}", (a[0], a[1] + 22), align="center")
    for m in marks:
        a, b = px(m, y0), px(m, y1)
        for yy in range(b[1], a[1], 10):
            cv2.line(img, (a[0], yy), (a[0], min(yy + 5, a[1])), MARK, 1)
    cv2.rectangle(img, px(x0, y1), px(x1, y0), INK, 1)
    for values, color in zip(series.values(), COLORS, strict=False):
        points = [px(xv, yv) for xv, yv in zip(x, values, strict=True) if yv is not None and math.isfinite(yv)]
        if len(points) > 1:
            cv2.polylines(img, [np.array(points, np.int32)], False, color, 2, cv2.LINE_AA)
        for p in points:
            cv2.circle(img, p, 3, color, -1, cv2.LINE_AA)
    legend = [(name, color) for name, color in zip(series, COLORS, strict=False)]
    if marks and mark_label:
        legend.append((mark_label, MARK))
    lx, ly = w - right - 250, top + 18
    for i, (name, color) in enumerate(legend):
        cv2.line(img, (lx, ly + 20 * i - 4), (lx + 24, ly + 20 * i - 4), color, 2)
        _text(img, name, (lx + 32, ly + 20 * i))
    _text(img, title, (w // 2, 30), align="center", scale=0.6)
    _text(img, xlabel, ((left + w - right) // 2, h - 18), align="center")
    label = np.full((30, h, 3), 255, np.uint8)
    _text(label, ylabel, (h // 2 + (bottom - top) // 2 - 40, 20), align="center")
    img[:, :30] = cv2.rotate(label, cv2.ROTATE_90_COUNTERCLOCKWISE)[:, :30]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"{path}: cannot write the plot")
    return path


def _text(img: np.ndarray, text: str, at: tuple[int, int], *, align: str = "left", scale: float = 0.45) -> None:
    (tw, _), _ = cv2.getTextSize(text, FONT, scale, 1)
    x = at[0] - (tw if align == "right" else tw // 2 if align == "center" else 0)
    cv2.putText(img, text, (x, at[1]), FONT, scale, INK, 1, cv2.LINE_AA)
