"""YOLO segmentation: `labels/<split>/<stem>.txt`, one line per region, `CLASS x1 y1 x2 y2 ...` with
coordinates divided by the image's width and height; `data.yaml` names the classes and the splits.

Polygons are lossy: each 8-connected region's outer boundary within `tolerance` pixels, holes lost
(see `labelformats.polygons`). They are written for ultralytics' reader, which parses float32, scales by
the image size, truncates to integers and fills with OpenCV (pixel centres): each point is the centre of
a boundary pixel plus half a pixel, so truncation lands on that pixel whatever the rounding of the
6 digits. Lines go from the largest region to the smallest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from engine.atomic import atomic_write_bytes
from engine.classes import SegClass
from labelformats.polygons import region_polygons, regions

DIGITS = 6


def yolo_lines(labels: np.ndarray, tolerance: float = 1.0) -> list[str]:
    """The label file's lines for one label map (class index, then normalised x y pairs)."""
    h, w = labels.shape
    rows = []
    for c in np.flatnonzero(np.bincount(labels.ravel(), minlength=256)[:255]).tolist():
        for region in regions(labels == c):
            for poly in region_polygons(region, tolerance):
                xy = np.clip((poly + 0.5) / [w, h], 0.0, 1.0)
                rows.append((-int(region.sum()), " ".join([str(c)] + [f"{v:.{DIGITS}f}" for v in xy.ravel()])))
    return [line for _, line in sorted(rows, key=lambda r: r[0])]


def parse_line(line: str) -> tuple[int, np.ndarray]:
    """(class, `[N, 2]` normalised x, y) of one label line."""
    head, *values = line.split()
    if len(values) < 6 or len(values) % 2:
        raise ValueError(f"a YOLO segment needs a class and at least 3 x y pairs: {line!r}")
    return int(head), np.asarray(values, np.float64).reshape(-1, 2)


def data_yaml(classes: list[SegClass], splits: list[str]) -> str:
    doc = {"path": ".", **{s: f"images/{s}" for s in splits}, "nc": len(classes),
           "names": {i: c.name for i, c in enumerate(classes)}}
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def write_yaml(path: Path, classes: list[SegClass], splits: list[str]) -> Path:
    return atomic_write_bytes(path, data_yaml(classes, splits).encode("utf-8"))
