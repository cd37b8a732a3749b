"""The attention panel: the maps `engine.explain` gives for the clicked pixel, as thumbnails to pick from."""

from __future__ import annotations

import re

import cv2
import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.canvas.tiles import HEAT_LUT, rgb_image

KEY_ROLE = Qt.ItemDataRole.UserRole
THUMB = 120


def map_title(key: str) -> str:
    """A readable name for an explain key: 'cam' -> 'class activation', 'attention/layer3' -> 'layer 3'."""
    if key == "cam":
        return "class activation (CAM)"
    m = re.fullmatch(r"attention/layer(\d+)", key)
    if m:
        return f"attention, layer {m.group(1)}"
    m = re.fullmatch(r"attention/decoder(\d+)", key)
    if m:
        return f"mask decoder, layer {m.group(1)}"
    m = re.fullmatch(r"attention/pass(\d+)", key)
    if m:
        return f"criss-cross pass {m.group(1)}"
    m = re.fullmatch(r"codeword(\d+)", key)
    if m:
        return f"codeword {m.group(1)}"
    return key


KEY_GROUPS = ("cam", "attention/layer", "attention/decoder", "attention/pass", "codeword")


def key_order(key: str) -> tuple:
    """CAM first, then encoder attention layers, decoder layers, criss-cross passes, codewords; numbers in order."""
    stem = re.sub(r"\d+$", "", key)
    num = [int(n) for n in re.findall(r"\d+", key)]
    group = KEY_GROUPS.index(stem) if stem in KEY_GROUPS else len(KEY_GROUPS)
    return (group, stem, num)


def heat_thumbnail(values: np.ndarray, image: np.ndarray | None, size: int = THUMB) -> QIcon:
    """A map over a dimmed grey copy of the image, fitted in `size` x `size`."""
    h, w = values.shape
    scale = size / max(h, w)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    v = cv2.resize(np.nan_to_num(values.astype(np.float32)), (tw, th), interpolation=cv2.INTER_AREA)
    lo, hi = float(v.min()), float(v.max())
    idx = np.clip((v - lo) * (255.0 / ((hi - lo) or 1.0)), 0, 255).astype(np.uint8)
    argb = HEAT_LUT[idx]
    alpha = ((argb >> 24) & 255).astype(np.float32)[..., None] / 255.0
    heat = np.stack([(argb >> 16) & 255, (argb >> 8) & 255, argb & 255], -1).astype(np.float32)  # premultiplied
    if image is not None:
        grey = cv2.cvtColor(cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        base = np.repeat(grey[..., None].astype(np.float32) * 0.6, 3, axis=2)
    else:
        base = np.zeros((th, tw, 3), np.float32)
    rgb = np.clip(heat + base * (1.0 - alpha), 0, 255).astype(np.uint8)
    return QIcon(QPixmap.fromImage(rgb_image(rgb)))


class AttentionPanel(QWidget):
    """Emits `mapSelected(key)` for the map to overlay on the canvas, `cleared` to hide it."""

    mapSelected = Signal(str)
    cleared = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.maps: dict[str, np.ndarray] = {}
        self.info = QLabel("Pick the attention tool (A) and click a pixel to see what the model looks at there.")
        self.info.setWordWrap(True)
        self.info.setProperty("hint", True)
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setSpacing(4)
        self.list.setWordWrap(True)
        self.list.currentItemChanged.connect(self._on_current)
        clear = QPushButton("Clear")
        clear.setToolTip("Hide the attention map")
        clear.clicked.connect(self.clear)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.info)
        layout.addWidget(self.list, 1)
        layout.addLayout(row)

    def set_busy(self, text: str) -> None:
        self.info.setText(text)

    def set_maps(self, maps: dict[str, np.ndarray], image: np.ndarray | None, caption: str) -> None:
        """Show `maps` (float [h, w] each, over `image` crop [h, w, 3]) and select the first."""
        keep = self.list.currentItem().data(KEY_ROLE) if self.list.currentItem() is not None else None
        self.maps = dict(maps)
        self.info.setText(caption)
        self.list.blockSignals(True)
        self.list.clear()
        for key in sorted(self.maps, key=key_order):
            item = QListWidgetItem(heat_thumbnail(self.maps[key], image), map_title(key))
            item.setData(KEY_ROLE, key)
            item.setToolTip(key)
            self.list.addItem(item)
        self.list.blockSignals(False)
        keys = [self.list.item(i).data(KEY_ROLE) for i in range(self.list.count())]
        if keys:
            self.list.setCurrentRow(keys.index(keep) if keep in keys else 0)

    def select(self, key: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(KEY_ROLE) == key:
                self.list.setCurrentRow(i)

    def clear(self) -> None:
        self.maps = {}
        self.list.clear()
        self.info.setText("Pick the attention tool (A) and click a pixel to see what the model looks at there.")
        self.cleared.emit()

    def _on_current(self, item: QListWidgetItem | None, _previous) -> None:
        if item is not None:
            self.mapSelected.emit(item.data(KEY_ROLE))
