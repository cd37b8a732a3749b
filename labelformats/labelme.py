"""labelme JSON (up to labelme 6): one file per image with `shapes` (polygon, oriented_rectangle, rectangle,
circle, line, linestrip, point, mask).

Reading renders the shapes as labelme does (PIL's polygon, rectangle and ellipse with outline, later
shapes over earlier ones); points up to `EDGE` pixels outside the image are drawn as they are (labelme's
own examples have such points; PIL clips them). Writing uses `mask` shapes, one per class, so the file
holds the label map exactly; with `polygons=True` it writes one polygon per connected region instead,
through the centres of its boundary pixels as PIL draws them, largest region first so that an enclosed
region lies over its surroundings (outer boundary within `tolerance` pixels; unlabelled holes are lost).
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from engine.atomic import atomic_write_bytes
from engine.classes import SegClass
from engine.images import max_pixels
from labelformats.base import UNLABELLED, ExportItem, FormatError, Item, LabelSource, SourceClass, Written, load_json
from labelformats.masks import check_labels, write_class_map
from labelformats.polygons import region_polygons, regions

LABELME_VERSION = "5.4.1"
LINE_WIDTH, POINT_SIZE = 10, 5  # labelme's defaults for lines and points
EDGE = 2.0  # how far (pixels) a point may lie outside the image before it is an error


def _load(path: Path) -> dict:
    doc = load_json(path, "labelme file")
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
        raise FormatError(f"{path}: not a labelme file (no 'shapes' list)")
    for key in ("imageHeight", "imageWidth"):
        if not isinstance(doc.get(key), int) or isinstance(doc[key], bool) or doc[key] <= 0:
            raise FormatError(f"{path}: not a labelme file ({key!r} must be a positive integer)")
    limit = max_pixels()
    if doc["imageHeight"] * doc["imageWidth"] > limit:
        raise FormatError(f"{path}: drawn on an image of {doc['imageWidth']} x {doc['imageHeight']} pixels, over the "
                          f"limit of {limit:,} pixels; set SEGASSIST_MAX_PIXELS to read larger images")
    for i, shape in enumerate(doc["shapes"]):
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str) or \
                not isinstance(shape.get("points"), list):
            raise FormatError(f"{path}: shape {i} needs a 'label' and a list of 'points'")
        if not isinstance(shape.get("shape_type") or "", str):
            raise FormatError(f"{path}: shape {i}: 'shape_type' must be text, not {shape['shape_type']!r:.60}")
    return doc


class LabelmeSource(LabelSource):
    """A folder of labelme JSON files (searched recursively)."""

    format = "labelme"

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._items: list[Item] | None = None
        self._classes: list[SourceClass] | None = None

    def items(self) -> list[Item]:
        if self._items is None:
            if self.folder.is_file():
                paths = [self.folder]
            elif self.folder.is_dir():
                paths = sorted(p for p in self.folder.rglob("*.json") if p.name != "classes.json")
            else:
                raise FormatError(f"{self.folder}: no such file or folder")
            if not paths:
                raise FormatError(f"{self.folder}: no labelme .json files found")
            self._items = [Item(_key(p, _load(p)), p) for p in paths]
        return self._items

    def classes(self) -> list[SourceClass]:
        if self._classes is None:
            names: dict[str, None] = {}
            for item in self.items():
                for shape in _load(item.path)["shapes"]:
                    names.setdefault(shape["label"])
            self._classes = [SourceClass(i, name) for i, name in enumerate(names)]
        return self._classes

    def read(self, item: Item, shape=None) -> np.ndarray:
        doc = _load(item.path)
        h, w = doc["imageHeight"], doc["imageWidth"]
        if shape is not None and (h, w) != tuple(shape):
            raise FormatError(f"{item.path}: drawn on an image of {w}x{h} pixels, but the image is "
                              f"{shape[1]}x{shape[0]}")
        ids = {c.name: c.id for c in self.classes()}
        out = np.full((h, w), UNLABELLED, np.int32)
        for i, s in enumerate(doc["shapes"]):
            out[shape_mask(item.path, i, s, (h, w))] = ids[s["label"]]
        return out


def _key(path: Path, doc: dict) -> str:
    image = doc.get("imagePath")
    return Path(str(image).replace("\\", "/")).stem if isinstance(image, str) and image else path.stem


def shape_mask(path: Path, i: int, shape: dict, size: tuple[int, int]) -> np.ndarray:
    """The bool mask of one labelme shape, as labelme renders it."""
    h, w = size
    kind = shape.get("shape_type") or "polygon"
    try:
        pts = [(float(x), float(y)) for x, y in shape["points"]]
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{path}: shape {i} ({shape['label']!r}): points must be [x, y] pairs") from exc
    for x, y in pts:
        if not (math.isfinite(x) and math.isfinite(y) and -EDGE <= x <= w + EDGE and -EDGE <= y <= h + EDGE):
            raise FormatError(f"{path}: shape {i} ({shape['label']!r}) has the point ({x:g}, {y:g}) outside the "
                              f"image of {w}x{h} pixels")
    if kind == "mask":
        if len(pts) != 2 or not isinstance(shape.get("mask"), str):
            raise FormatError(f"{path}: mask shape {i} needs two corner points and a base64 PNG 'mask'")
        corners = np.asarray(pts)
        (x1, y1), (x2, y2) = corners.round().astype(int)
        fractional = not np.array_equal(corners, np.trunc(corners))  # labelme 6: the mask keeps its own size
        box = (x2 - x1 + 1, y2 - y1 + 1)
        try:
            with Image.open(io.BytesIO(base64.b64decode(shape["mask"]))) as im:
                if fractional and abs(im.size[0] - box[0]) <= 1 and abs(im.size[1] - box[1]) <= 1:
                    box = im.size
                if im.size != box:  # from the header: a PNG bomb is never decoded
                    raise FormatError(f"{path}: mask shape {i} ({shape['label']!r}): a {im.size[0]}x{im.size[1]} "
                                      f"mask for a box of {box[0]}x{box[1]}")
                crop = np.asarray(im).astype(bool)
        except FormatError:
            raise
        except Exception as exc:  # noqa: BLE001 - any undecodable mask is the same problem for the person
            raise FormatError(f"{path}: mask shape {i} ({shape['label']!r}): the mask is not a base64 PNG") from exc
        if crop.ndim == 3:
            crop = crop[..., 0]
        if fractional:
            y2, x2 = y1 + crop.shape[0] - 1, x1 + crop.shape[1] - 1
        if crop.shape != (box[1], box[0]):
            raise FormatError(f"{path}: mask shape {i} ({shape['label']!r}): a {crop.shape[1]}x{crop.shape[0]} mask "
                              f"for a box of {box[0]}x{box[1]}")
        out = np.zeros((h, w), bool)
        ys, xs = max(y1, 0), max(x1, 0)
        if ys < min(y2 + 1, h) and xs < min(x2 + 1, w):
            out[ys:y2 + 1, xs:x2 + 1] = crop[ys - y1: h - y1, xs - x1: w - x1]
        return out
    im = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(im)
    need = {"circle": 2, "rectangle": 2, "point": 1, "oriented_rectangle": 4}
    if kind in need and len(pts) != need[kind]:
        raise FormatError(f"{path}: {kind} shape {i} ({shape['label']!r}) needs {need[kind]} points, has {len(pts)}")
    if kind == "circle":
        (cx, cy), (px, py) = pts
        d = math.hypot(cx - px, cy - py)
        draw.ellipse([cx - d, cy - d, cx + d, cy + d], outline=1, fill=1)
    elif kind == "rectangle":
        (x1, y1), (x2, y2) = pts
        draw.rectangle([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)], outline=1, fill=1)
    elif kind in ("line", "linestrip"):
        draw.line(xy=pts, fill=1, width=LINE_WIDTH)
    elif kind == "point":
        (cx, cy), r = pts[0], POINT_SIZE
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    elif kind == "oriented_rectangle":
        draw.polygon(xy=pts, outline=1, fill=1)
    elif kind == "polygon":
        if len(pts) < 3:
            raise FormatError(f"{path}: polygon {i} ({shape['label']!r}) has fewer than 3 points")
        draw.polygon(xy=pts, outline=1, fill=1)
    else:
        raise FormatError(f"{path}: shape {i} has an unknown shape_type {kind!r}")
    return np.asarray(im, bool)


def _mask_b64(mask: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8), mode="L").save(buf, format="PNG")  # 0/1, as labelme writes it
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _shape(label: str, points, kind: str, mask: str | None = None) -> dict:
    return {"label": label, "points": points, "group_id": None, "description": "", "shape_type": kind,
            "flags": {}, "mask": mask}


def _mask_shape(label: str, mask: np.ndarray) -> dict:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    y1, y2, x1, x2 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    corners = [[float(x1), float(y1)], [float(x2), float(y2)]]
    return _shape(label, corners, "mask", _mask_b64(mask[y1:y2 + 1, x1:x2 + 1]))


def labelme_doc(labels: np.ndarray, classes: list[SegClass], image_path: str, *, polygons: bool = False,
                tolerance: float = 1.0) -> dict:
    """The labelme document of one label map (see the module's docstring for what each mode keeps)."""
    h, w = labels.shape
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=256)[:255]).tolist()
    if polygons:
        found = [(-int(region.sum()), c, poly) for c in present for region in regions(labels == c)
                 for poly in region_polygons(region, tolerance)]
        shapes = [_shape(classes[c].name, [[float(x), float(y)] for x, y in poly], "polygon")
                  for _, c, poly in sorted(found, key=lambda f: f[:2])]
    else:
        shapes = [_mask_shape(classes[c].name, labels == c) for c in present]
    return {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_path, "imageData": None,
            "imageHeight": int(h), "imageWidth": int(w)}


def write_labelme(items: Iterable[ExportItem], classes: list[SegClass], out: Path, written: Written,
                  progress=None, *, polygons: bool = False, tolerance: float = 1.0) -> int:
    """`<out>/<stem>.json` per image, `imagePath` relative to it (the image stays where it is)."""
    out = Path(out)
    n = 0
    for item in items:
        labels = check_labels(item, classes)
        path = out / f"{item.stem}.json"
        rel = os.path.relpath(Path(item.image_path).resolve(), out.resolve()).replace(os.sep, "/")
        doc = labelme_doc(labels, classes, rel, polygons=polygons, tolerance=tolerance)
        atomic_write_bytes(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        written.add(path)
        n += 1
        if progress is not None:
            progress(n)
    write_class_map(out / "classes.json", classes, written)
    return n
