"""Canvas layers drawn from numpy arrays in cached tiles, with a level of detail per zoom.

Each layer turns a tile of its source array into a QPixmap on demand, caches it, and drops only the
tiles that a changed region touches. Zoomed out, tiles come from a coarser level (every 2^level-th
pixel, or an area-averaged pyramid for the photo), so a 10000 x 10000 image costs about as much to
draw as the screen it is shown on.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

import cv2
import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

TILE = 256
CRISP_FROM = 4.0  # from this zoom on, even photos show their pixels as squares (nearest neighbour)
Region = tuple[int, int, int, int]  # y0, x0, y1, x1 (half-open), image pixels


def rgba_lut(colors: list[tuple[int, int, int]], alpha: int = 255, transparent: tuple[int, ...] = (255,)) -> np.ndarray:
    """A 256-entry premultiplied ARGB32 table: index i -> colors[i]; indices without a colour and
    those in `transparent` are fully transparent."""
    lut = np.zeros(256, np.uint32)
    a = alpha / 255.0
    for i, (r, g, b) in enumerate(colors[:256]):
        pr, pg, pb = (round(v * a) for v in (r, g, b))
        lut[i] = (alpha << 24) | (pr << 16) | (pg << 8) | pb
    for i in transparent:
        lut[i] = 0
    return lut


def colormap_lut(stops: list[tuple[float, tuple[int, int, int, int]]]) -> np.ndarray:
    """A 256-entry premultiplied ARGB32 table interpolated between (position 0-1, RGBA) stops."""
    pos = np.array([p for p, _ in stops], np.float64)
    rgba = np.array([c for _, c in stops], np.float64)
    x = np.linspace(0.0, 1.0, 256)
    chans = [np.interp(x, pos, rgba[:, k]) for k in range(4)]
    a = chans[3] / 255.0
    r, g, b = (np.round(c * a).astype(np.uint32) for c in chans[:3])
    return (np.round(chans[3]).astype(np.uint32) << 24) | (r << 16) | (g << 8) | b


# Heat maps: transparent and cool where the value is low, opaque and hot where it is high.
HEAT_LUT = colormap_lut([
    (0.0, (48, 18, 120, 0)), (0.25, (40, 90, 220, 110)), (0.5, (30, 200, 160, 160)),
    (0.75, (250, 200, 40, 200)), (1.0, (240, 40, 30, 230)),
])


def lut_image(indices: np.ndarray, lut: np.ndarray, argb: np.ndarray | None = None) -> QImage:
    """uint8 indices [h, w] through an ARGB32 table into a premultiplied QImage (owns its pixels)."""
    argb = np.ascontiguousarray(lut[indices]) if argb is None else argb
    h, w = argb.shape
    return QImage(argb.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied).copy()


def rgb_image(rgb: np.ndarray) -> QImage:
    """uint8 RGB [h, w, 3] into a QImage (owns its pixels)."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class TiledLayer(QGraphicsItem):
    """A layer of the size of the image, painted from cached tiles.

    `render(level, y0, x0, y1, x1)` returns the QImage of image pixels [y0:y1, x0:x1] sampled every
    2^level pixels. `smooth`: interpolate when magnified a little (photos; from `CRISP_FROM` on every
    layer shows crisp pixels) or never (labels)."""

    def __init__(self, shape: tuple[int, int], render: Callable[[int, int, int, int, int], QImage | None],
                 *, smooth: bool = False, max_tiles: int = 512, parent: QGraphicsItem | None = None):
        super().__init__(parent)
        self.extent = shape  # (h, w); never `shape`, which would hide QGraphicsItem.shape()
        self._render = render
        self._smooth = smooth
        self._cache: OrderedDict[tuple[int, int, int], QPixmap | None] = OrderedDict()
        self._max_tiles = max_tiles
        h, w = shape
        self._max_level = max(0, math.ceil(math.log2(max(h, w) / TILE))) if max(h, w) > TILE else 0
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.tiles_rendered = 0  # for tests and benchmarks

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self.extent[1], self.extent[0])

    def level_for_scale(self, scale: float) -> int:
        """The coarsest level whose pixels are still at least one screen pixel."""
        if scale >= 1.0 or scale <= 0:
            return 0
        return min(self._max_level, int(math.floor(math.log2(1.0 / scale) + 1e-9)))

    def invalidate(self, region: Region | None = None) -> None:
        """Forget the cached tiles that `region` (all when None) touches and schedule their repaint."""
        if region is None:
            self._cache.clear()
            self.update()
            return
        y0, x0, y1, x1 = region
        if y1 <= y0 or x1 <= x0:
            return
        for level in range(self._max_level + 1):
            span = TILE << level
            for ty in range(y0 // span, (y1 - 1) // span + 1):
                for tx in range(x0 // span, (x1 - 1) // span + 1):
                    self._cache.pop((level, ty, tx), None)
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def release(self) -> None:
        """Drop the cached tiles and the reference to the source (the layer is leaving the scene)."""
        self._cache.clear()
        self._render = _render_nothing

    def cached_tiles(self) -> int:
        return len(self._cache)

    def _tile(self, level: int, ty: int, tx: int) -> QPixmap | None:
        key = (level, ty, tx)
        pix = self._cache.get(key, False)
        if pix is not False:
            self._cache.move_to_end(key)
            return pix
        span = TILE << level
        h, w = self.extent
        y0, x0 = ty * span, tx * span
        img = self._render(level, y0, x0, min(h, y0 + span), min(w, x0 + span))
        pix = QPixmap.fromImage(img) if img is not None else None
        self.tiles_rendered += 1
        self._cache[key] = pix
        while len(self._cache) > self._max_tiles:
            self._cache.popitem(last=False)
        return pix

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        scale = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        level = self.level_for_scale(scale)
        step = 1 << level
        span = TILE << level
        h, w = self.extent
        exposed = option.exposedRect.intersected(self.boundingRect())
        if exposed.isEmpty():
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform,
                              scale < 1.0 or (self._smooth and scale < CRISP_FROM))
        ex0, ey0 = max(0, int(exposed.left())), max(0, int(exposed.top()))
        ex1, ey1 = min(w, math.ceil(exposed.right())), min(h, math.ceil(exposed.bottom()))
        for ty in range(ey0 // span, (ey1 - 1) // span + 1):
            for tx in range(ex0 // span, (ex1 - 1) // span + 1):
                pix = self._tile(level, ty, tx)
                if pix is None:
                    continue
                oy, ox = ty * span, tx * span
                # Only the part of the tile that is exposed, in whole tile pixels.
                sx0, sy0 = max(0, (ex0 - ox) // step), max(0, (ey0 - oy) // step)
                sx1 = min(pix.width(), -(-(ex1 - ox) // step))
                sy1 = min(pix.height(), -(-(ey1 - oy) // step))
                if sx1 <= sx0 or sy1 <= sy0:
                    continue
                tx0, ty0 = ox + sx0 * step, oy + sy0 * step
                tw = min(w, ox + sx1 * step) - tx0
                th = min(h, oy + sy1 * step) - ty0
                source = QRectF(sx0, sy0, tw / step, th / step)
                painter.drawPixmap(QRectF(tx0, ty0, tw, th), pix, source)


def _render_nothing(level: int, y0: int, x0: int, y1: int, x1: int) -> None:
    return None


class ImagePyramid:
    """The photo and its area-averaged halvings, computed when first needed."""

    def __init__(self, image: np.ndarray):
        self.levels: list[np.ndarray] = [image]

    def level(self, level: int) -> np.ndarray:
        while len(self.levels) <= level:
            prev = self.levels[-1]
            h, w = prev.shape[:2]
            self.levels.append(cv2.resize(prev, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA))
        return self.levels[level]


def image_layer(image: np.ndarray) -> TiledLayer:
    """The photo, smooth when magnified or reduced."""
    pyramid = ImagePyramid(image)

    def render(level: int, y0: int, x0: int, y1: int, x1: int) -> QImage:
        s = 1 << level
        arr = pyramid.level(level)
        return rgb_image(arr[y0 // s: -(-y1 // s), x0 // s: -(-x1 // s)])

    layer = TiledLayer(image.shape[:2], render, smooth=True)
    layer.pyramid = pyramid
    return layer


HATCH_PERIOD = 6  # screen-ish pixels between the proposal's stripes (in pixels of the tile's level)


class IndexLayer(TiledLayer):
    """Class indices (labels or the proposal) through a colour table; 255 is transparent.

    `source()` returns the current index array, `mask()` (optional) an array whose pixels other than
    255 hide this layer (the proposal is shown only where nothing is labelled). With `hatch`, every
    other diagonal band is left out, so a proposal never looks like accepted labels."""

    def __init__(self, shape: tuple[int, int], source: Callable[[], np.ndarray | None],
                 lut: np.ndarray, mask: Callable[[], np.ndarray | None] | None = None, *, hatch: bool = False):
        self._source, self._mask, self.lut, self.hatch = source, mask, lut, hatch
        super().__init__(shape, self._render_indices, smooth=False)

    def release(self) -> None:
        super().release()
        self._source = self._mask = None

    def set_lut(self, lut: np.ndarray) -> None:
        self.lut = lut
        self.invalidate()

    def _render_indices(self, level: int, y0: int, x0: int, y1: int, x1: int) -> QImage | None:
        arr = self._source()
        if arr is None:
            return None
        s = 1 << level
        idx = arr[y0:y1:s, x0:x1:s]
        mask = self._mask() if self._mask is not None else None
        if mask is not None:
            idx = np.where(mask[y0:y1:s, x0:x1:s] == 255, idx, np.uint8(255))
        if self.hatch:
            rows = np.arange(idx.shape[0])[:, None] + y0 // s
            cols = np.arange(idx.shape[1])[None, :] + x0 // s
            idx = np.where((rows + cols) % HATCH_PERIOD < HATCH_PERIOD // 2, idx, np.uint8(255))
        argb = self.lut[idx]
        if not argb.any():  # nothing visible here: no pixmap, nothing to draw
            return None
        return lut_image(idx, self.lut, argb)


class HeatLayer(TiledLayer):
    """A float map [h, w] placed at `origin`, scaled to 0-1 by (lo, hi) and drawn through HEAT_LUT."""

    def __init__(self, shape: tuple[int, int], values: np.ndarray, lo: float, hi: float,
                 origin: tuple[int, int] = (0, 0), lut: np.ndarray = HEAT_LUT):
        self.origin = origin
        self.indices = quantize(values, lo, hi)
        self.lut = lut
        super().__init__(values.shape[:2], self._render_heat, smooth=False)
        self.setPos(origin[1], origin[0])
        self.image_shape = shape

    def _render_heat(self, level: int, y0: int, x0: int, y1: int, x1: int) -> QImage:
        s = 1 << level
        return lut_image(self.indices[y0:y1:s, x0:x1:s], self.lut)


def quantize(values: np.ndarray, lo: float, hi: float, rows: int = 1024) -> np.ndarray:
    """uint8 0-255 for `values` from `lo` (0) to `hi` (255; hi < lo inverts), in bands of `rows` rows so a
    10000 x 10000 float map needs no full-size float temporaries."""
    out = np.empty(values.shape, np.uint8)
    scale = 255.0 / ((hi - lo) or 1.0)
    for y in range(0, values.shape[0], rows):
        band = values[y:y + rows].astype(np.float32)
        band -= lo
        band *= scale
        np.clip(band, 0, 255, out=band)
        out[y:y + rows] = band
    return out


def scale_to_unit(values: np.ndarray) -> tuple[float, float]:
    """(low, high) for showing `values` as a heat map: robust percentiles of a subsample."""
    sample = values[:: max(1, values.shape[0] // 512), :: max(1, values.shape[1] // 512)]
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [1, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1e-6)

