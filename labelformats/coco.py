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
from labelformats.base import UNLABELLED, ExportItem, FormatError, Item, LabelSource, SourceClass, Written
from labelformats.masks import check_labels, open_mask
from labelformats.polygons import region_outline, regions

EDGE = 2.0  # polygon points may lie this far (pixels) outside the image; the rasteriser clips them


def _load_json(path: Path, keys: tuple[str, ...], what: str) -> dict:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FormatError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: cannot be read ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(doc, dict) or any(not isinstance(doc.get(k), list) for k in keys):
        raise FormatError(f"{path}: not a {what} file (it needs the lists {', '.join(keys)})")
    return doc


def _categories(path: Path, doc: dict) -> list[SourceClass]:
    out = []
    for c in doc["categories"]:
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or not isinstance(c.get("name"), str):
            raise FormatError(f"{path}: a category needs an integer 'id' and a 'name': {c!r}")
        out.append(SourceClass(c["id"], c["name"], tuple(c["color"]) if isinstance(c.get("color"), list) else None))
    return out


def _images(path: Path, doc: dict) -> dict[int, dict]:
    images = {}
    for im in doc["images"]:
        if not isinstance(im, dict) or not isinstance(im.get("id"), int) or not isinstance(im.get("file_name"), str):
            raise FormatError(f"{path}: an image needs an integer 'id' and a 'file_name': {im!r}")
        if not all(isinstance(im.get(k), int) and im[k] > 0 for k in ("height", "width")):
            raise FormatError(f"{path}: image {im['file_name']!r} needs a positive 'height' and 'width'")
        images[im["id"]] = im
    return images


def _without_empty(anns: list) -> tuple[list, int]:
    """The annotations less those whose segmentation is an empty list of polygons, and how many those were."""
    def empty(ann) -> bool:
        seg = ann.get("segmentation") if isinstance(ann, dict) else None
        return isinstance(seg, list) and all(isinstance(p, list) and not p for p in seg)

    kept = [a for a in anns if not empty(a)]
    return kept, len(anns) - len(kept)


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
        known = {c.id for c in self._classes}
        for ann in doc["annotations"]:
            if not isinstance(ann, dict) or "segmentation" not in ann or ann.get("image_id") not in self._images:
                raise FormatError(f"{self.path}: annotation {ann.get('id') if isinstance(ann, dict) else ann!r} "
                                  "needs a 'segmentation' and the 'image_id' of a listed image")
            if ann.get("category_id") not in known:
                raise FormatError(f"{self.path}: annotation {ann.get('id')} has category_id "
                                  f"{ann.get('category_id')!r}, which is not among the categories")
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
                m = self.coco.annToMask(ann).astype(bool)
            except Exception as exc:  # noqa: BLE001 - pycocotools raises assorted errors on bad segmentations
                raise FormatError(f"{where}: annotation {ann.get('id')} cannot be decoded ({exc})") from exc
            masks.append((not ann.get("iscrowd", 0), -int(m.sum()), ann.get("id", 0), m, ann["category_id"]))
        for *_, m, cat in sorted(masks, key=lambda t: t[:3]):
            out[m] = cat
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
