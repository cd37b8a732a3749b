"""COCO: instances (and COCO-Stuff, the same layout) through `pycocotools`, and COCO panoptic.

Overlap rule on import: crowd annotations are drawn first, then the others from the largest area to the
smallest (ties in annotation id order), each over the ones before, so a small object lying on a larger
one stays visible. Annotations with no segmentation (`segmentation: []`, as box-only annotations and
some exporters write them) are skipped and counted (`skipped`). Export writes one annotation per
8-connected region per class; its RLE holds the region exactly (holes included); with `polygons=True`
the outline along the region's pixel edges instead, which pycocotools rasterises back to the region
with its holes filled (see `labelformats.polygons`: simplified within `tolerance` pixels).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from engine.atomic import atomic_write_bytes
from engine.classes import SegClass
from engine.images import max_pixels
from labelformats.base import (
    UNLABELLED,
    ExportItem,
    FormatError,
    Item,
    LabelSource,
    SourceClass,
    Written,
    check_class,
    is_number,
    load_json,
)
from labelformats.masks import check_labels, open_mask
from labelformats.polygons import region_outline, regions

EDGE = 2.0  # polygon points may lie this far (pixels) outside the image; the rasteriser clips them


def _load_json(path: Path, keys: tuple[str, ...], what: str) -> dict:
    doc = load_json(path, f"{what} file")
    if not isinstance(doc, dict) or any(not isinstance(doc.get(k), list) for k in keys):
        raise FormatError(f"{path}: not a {what} file (it needs the lists {', '.join(keys)})")
    return doc


def _categories(path: Path, doc: dict) -> list[SourceClass]:
    """The categories, each checked (id, name, colour) before anything is written."""
    out, seen = [], set()
    for c in doc["categories"]:
        if not isinstance(c, dict) or not _is_id(c.get("id")) or not isinstance(c.get("name"), str):
            raise FormatError(f"{path}: a category needs an integer 'id' (0 to {MAX_ID}) and a 'name': {c!r:.200}")
        if c["id"] in seen:
            raise FormatError(f"{path}: category id {c['id']} is listed twice")
        seen.add(c["id"])
        color = c.get("color")
        check_class(f"{path}: category {c['id']}", c["name"], color)
        out.append(SourceClass(c["id"], c["name"], tuple(color) if color is not None else None))
    return out


def _images(path: Path, doc: dict) -> dict[int, dict]:
    images = {}
    limit = max_pixels()
    for im in doc["images"]:
        if not isinstance(im, dict) or not _is_id(im.get("id")) or not isinstance(im.get("file_name"), str):
            raise FormatError(f"{path}: an image needs an integer 'id' and a 'file_name': {im!r:.200}")
        if not all(_is_id(im.get(k)) and im[k] > 0 for k in ("height", "width")):
            raise FormatError(f"{path}: image {im['file_name']!r} needs a positive 'height' and 'width'")
        if im["height"] * im["width"] > limit:
            raise FormatError(f"{path}: image {im['file_name']!r} of {im['width']} x {im['height']} pixels is over "
                              f"the limit of {limit:,} pixels; set SEGASSIST_MAX_PIXELS to read larger images")
        if im["id"] in images:
            raise FormatError(f"{path}: image id {im['id']} is listed twice")
        images[im["id"]] = im
    return images


def _without_empty(anns: list) -> tuple[list, int]:
    """The annotations less those whose segmentation is an empty list of polygons, and how many those were."""
    def empty(ann) -> bool:
        seg = ann.get("segmentation") if isinstance(ann, dict) else None
        return isinstance(seg, list) and all(isinstance(p, list) and not p for p in seg)

    kept = [a for a in anns if not empty(a)]
    return kept, len(anns) - len(kept)


MAX_ID = 2**31 - 1


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID


def check_annotations(path: Path, anns: list, images: dict[int, dict], categories: set[int]) -> None:
    """Every annotation checked before anything is read or written: a unique integer id (pycocotools
    indexes by it: a repeated id would mix images up), a listed image and category, and a segmentation
    whose every number is finite (polygons) or whose run lengths cover exactly the image (RLE)."""
    ids: set[int] = set()
    for n, ann in enumerate(anns):
        if not isinstance(ann, dict):
            raise FormatError(f"{path}: annotation {n} is not an object: {ann!r:.100}")
        ann_id = ann.get("id")
        if not _is_id(ann_id):
            raise FormatError(f"{path}: annotation {n} needs an integer 'id' (0 to {MAX_ID}), has {ann_id!r:.60}")
        if ann_id in ids:
            raise FormatError(f"{path}: annotation id {ann_id} is used twice; COCO readers index annotations by id, "
                              "so each needs its own (renumber them)")
        ids.add(ann_id)
        where = f"{path}: annotation {ann_id}"
        im = images.get(ann.get("image_id")) if _is_id(ann.get("image_id")) else None
        if im is None or "segmentation" not in ann:
            raise FormatError(f"{where} needs a 'segmentation' and the 'image_id' of a listed image")
        if not _is_id(ann.get("category_id")) or ann["category_id"] not in categories:
            raise FormatError(f"{where} has category_id {ann.get('category_id')!r:.60}, which is not among the "
                              "categories")
        if ann.get("iscrowd", 0) not in (0, 1) or isinstance(ann.get("iscrowd"), bool):
            raise FormatError(f"{where}: 'iscrowd' must be 0 or 1, not {ann.get('iscrowd')!r:.60}")
        _check_segmentation(where, ann["segmentation"], im["height"], im["width"])


def _check_segmentation(where: str, seg, h: int, w: int) -> None:
    if isinstance(seg, list):
        for poly in seg:
            if not isinstance(poly, list) or not all(is_number(v) for v in poly):
                raise FormatError(f"{where}: a polygon must be a list of finite numbers x1, y1, x2, y2, ...")
        return
    if not isinstance(seg, dict):
        raise FormatError(f"{where}: 'segmentation' must be a list of polygons or an RLE object, not "
                          f"{type(seg).__name__}")
    if seg.get("size") != [h, w]:
        raise FormatError(f"{where} is an RLE of size {seg.get('size')!r:.60}, but the image is {h}x{w} "
                          "(height x width)")
    counts = seg.get("counts")
    if isinstance(counts, str):
        runs = rle_string_counts(where, counts)
    elif isinstance(counts, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
        runs = np.asarray(counts, np.int64) if all(abs(v) < 2**62 for v in counts) else np.array([-1])
    else:
        raise FormatError(f"{where}: RLE 'counts' must be a string or a list of integers")
    if runs.size and runs.min() < 0:
        raise FormatError(f"{where}: RLE has a negative run length")
    total = int(runs.sum())
    if total != h * w:
        raise FormatError(f"{where}: RLE run lengths cover {total} pixels, but the image has {h}x{w} = {h * w}")


def rle_string_counts(where: str, text: str) -> np.ndarray:
    """The run lengths of a compressed COCO RLE string (6-bit characters from '0', 5 value bits and a
    continuation bit each, the last group's sign bit; from the third run on, runs are stored as the
    difference to the run two before). Raises `FormatError` on a string that is not one."""
    try:
        raw = np.frombuffer(text.encode("ascii"), np.uint8).astype(np.int64) - 48
    except UnicodeEncodeError:
        raw = np.array([-1])
    if raw.size and (raw.min() < 0 or raw.max() > 63):
        raise FormatError(f"{where}: RLE counts string has characters outside the RLE alphabet")
    if not raw.size:
        return np.zeros(0, np.int64)
    last = (raw & 0x20) == 0  # the last character of each number
    if not last[-1]:
        raise FormatError(f"{where}: RLE counts string ends in the middle of a number")
    ends = np.flatnonzero(last)
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    if lengths.max() > 7:
        raise FormatError(f"{where}: RLE counts string has a run length too large for an image")
    k = np.arange(raw.size) - np.repeat(starts, lengths)
    values = np.add.reduceat((raw & 0x1F) << (5 * k), starts)
    negative = (raw[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * lengths[negative])
    runs = values.copy()
    runs[3::2] = np.cumsum(values[1::2])[1:] if values.size > 3 else runs[3::2]
    runs[4::2] = np.cumsum(values[2::2])[1:] if values.size > 4 else runs[4::2]
    return runs


class CocoSource(LabelSource):
    """A COCO instances (or COCO-Stuff) JSON file, read with `pycocotools.coco.COCO`."""

    format = "coco"

    def __init__(self, path: str | Path):
        from pycocotools.coco import COCO

        self.path = Path(path)
        doc = _load_json(self.path, ("images", "annotations", "categories"), "COCO instances")
        doc["annotations"], self.skipped = _without_empty(doc["annotations"])
        self._classes = _categories(self.path, doc)
        self._images = _images(self.path, doc)
        check_annotations(self.path, doc["annotations"], self._images, {c.id for c in self._classes})
        self.coco = COCO()
        self.coco.dataset = doc
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco.createIndex()

    def items(self) -> list[Item]:
        return [Item(Path(im["file_name"]).stem, self.path, im_id) for im_id, im in self._images.items()]

    def notes(self) -> list[str]:
        if not self.skipped:
            return []
        return [f"{self.path}: {self.skipped} annotation{'s' if self.skipped > 1 else ''} without a segmentation "
                "(segmentation: [], such as box-only annotations) skipped"]

    def classes(self) -> list[SourceClass]:
        return self._classes

    def read(self, item: Item, shape=None) -> np.ndarray:
        im = self._images[item.index]
        h, w = im["height"], im["width"]
        where = f"{self.path}: image {im['file_name']!r}"
        if shape is not None and (h, w) != tuple(shape):
            raise FormatError(f"{where} is {w}x{h} pixels in the file, but the image is {shape[1]}x{shape[0]}")
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=[item.index]))
        out = np.full((h, w), UNLABELLED, np.int32)
        masks = []
        for ann in anns:
            seg = ann["segmentation"]
            if isinstance(seg, list):
                for poly in seg:
                    xy = np.asarray(poly, np.float64).reshape(-1, 2) if len(poly) % 2 == 0 else None
                    if xy is None or len(xy) < 3:
                        raise FormatError(f"{where}: annotation {ann.get('id')} has a polygon of fewer than "
                                          "3 points")
                    if (xy[:, 0].min() < -EDGE or xy[:, 1].min() < -EDGE or xy[:, 0].max() > w + EDGE
                            or xy[:, 1].max() > h + EDGE):
                        raise FormatError(f"{where}: annotation {ann.get('id')} has a polygon outside the image "
                                          f"of {w}x{h} pixels")
            elif isinstance(seg, dict) and list(seg.get("size", ())) != [h, w]:
                raise FormatError(f"{where}: annotation {ann.get('id')} is an RLE of size {seg.get('size')}, "
                                  f"but the image is {h}x{w} (height x width)")
            try:
                rle = self.coco.annToRLE(ann)  # compact: one full-size mask at a time is decoded below
                area = int(mask_utils.area(rle))
            except Exception as exc:  # noqa: BLE001 - pycocotools raises assorted errors on bad segmentations
                raise FormatError(f"{where}: annotation {ann.get('id')} cannot be decoded ({exc})") from exc
            masks.append((not ann.get("iscrowd", 0), -area, ann.get("id", 0), rle, ann["category_id"]))
        for *_, rle, cat in sorted(masks, key=lambda t: t[:3]):
            out[mask_utils.decode(rle).astype(bool)] = cat
        return out


class CocoPanopticSource(LabelSource):
    """COCO panoptic: a JSON with `segments_info` per image and a folder of PNGs (id = R + 256 G + 256² B)."""

    format = "coco-panoptic"

    def __init__(self, path: str | Path, masks: str | Path | None = None):
        self.path = Path(path)
        doc = _load_json(self.path, ("annotations", "categories"), "COCO panoptic")
        self._classes = _categories(self.path, doc)
        self.masks = Path(masks) if masks is not None else self.path.with_suffix("")
        if not self.masks.is_dir():
            raise FormatError(f"{self.path}: its PNG folder {self.masks} does not exist")
        self._anns = doc["annotations"]
        for ann in self._anns:
            if not isinstance(ann, dict) or not isinstance(ann.get("file_name"), str) or \
                    not isinstance(ann.get("segments_info"), list):
                raise FormatError(f"{self.path}: a panoptic annotation needs 'file_name' and 'segments_info'")

    def items(self) -> list[Item]:
        return [Item(Path(a["file_name"]).stem, self.masks / a["file_name"], i) for i, a in enumerate(self._anns)]

    def classes(self) -> list[SourceClass]:
        return self._classes

    def read(self, item: Item, shape=None) -> np.ndarray:
        arr, mode, _ = open_mask(item.path)
        if arr.ndim != 3 or arr.shape[2] < 3:
            raise FormatError(f"{item.path}: a panoptic PNG must be RGB (segment id = R + 256 G + 256² B), "
                              f"this is {mode}")
        if shape is not None and arr.shape[:2] != tuple(shape):
            raise FormatError(f"{item.path}: {arr.shape[1]}x{arr.shape[0]} pixels for an image of "
                              f"{shape[1]}x{shape[0]}")
        rgb = arr[..., :3].astype(np.int64)
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
        known = {c.id for c in self._classes}
        table = {0: UNLABELLED}
        for seg in self._anns[item.index]["segments_info"]:
            if seg.get("category_id") not in known:
                raise FormatError(f"{item.path}: segment {seg.get('id')} has category_id {seg.get('category_id')!r}, "
                                  "which is not among the categories")
            table[int(seg["id"])] = int(seg["category_id"])
        present = np.unique(ids)
        missing = [int(v) for v in present if int(v) not in table]
        if missing:
            raise FormatError(f"{item.path}: segment ids {', '.join(map(str, missing[:5]))} are not in its "
                              "segments_info")
        lut_keys = np.array(sorted(table), np.int64)
        lut_vals = np.array([table[k] for k in sorted(table)], np.int32)
        return lut_vals[np.searchsorted(lut_keys, ids)]


def encode_region(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask, np.uint8))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def coco_doc(items: Iterable[ExportItem], classes: list[SegClass], *, polygons: bool = False,
             tolerance: float = 1.0, progress=None, on_image=None) -> dict:
    """A COCO instances document; category ids are class index + 1 (COCO counts from 1)."""
    images, anns = [], []
    for n, item in enumerate(items, 1):
        labels = check_labels(item, classes)
        h, w = labels.shape
        image_id = n
        images.append({"id": image_id, "file_name": Path(item.image_path).name, "height": int(h), "width": int(w)})
        if on_image is not None:
            on_image(item)
        for c in np.flatnonzero(np.bincount(labels.ravel(), minlength=256)[:255]).tolist():
            for region in regions(labels == c):
                rle = encode_region(region)
                if polygons:
                    segmentation = [p.astype(int).ravel().tolist() for p in region_outline(region, tolerance)]
                    rles = mask_utils.frPyObjects(segmentation, h, w)
                    area = float(mask_utils.area(mask_utils.merge(rles)))
                    bbox = mask_utils.toBbox(mask_utils.merge(rles)).tolist()
                else:
                    segmentation = rle
                    area = float(mask_utils.area(rle))
                    bbox = mask_utils.toBbox(rle).tolist()
                anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": c + 1,
                             "segmentation": segmentation, "area": area, "bbox": bbox, "iscrowd": 0})
        if progress is not None:
            progress(n)
    cats = [{"id": i + 1, "name": c.name, "supercategory": "", "color": list(c.color)} for i, c in enumerate(classes)]
    return {"info": {"description": "exported by SegAssist"}, "licenses": [], "images": images,
            "annotations": anns, "categories": cats}


def write_coco_json(path: Path, doc: dict, written: Written) -> Path:
    atomic_write_bytes(path, json.dumps(doc, ensure_ascii=False).encode("utf-8"))
    return written.add(path)
