"""Writing a data set out: every export format, its folder layout, and the train/val split.

Layouts (`out` is the folder given):
- index, palette, rgb: `masks/<stem>.png`, `images/<image>`, `classes.json` (index, name, colour;
  255 = not labelled) and `dataset_meta.json`: datumaro's common semantic segmentation.
- labelme: `<stem>.json` beside a copy of the image (`imagePath` is its name, `imageData` null).
- coco: `annotations/instances_<split>.json` and `images/<split>/<image>` (datumaro's and CVAT's layout).
- yolo: `images/<split>/<image>`, `labels/<split>/<stem>.txt`, `data.yaml`.
- voc: `JPEGImages/<image>` (copied as it is, whatever its suffix), `SegmentationClass/<stem>.png`
  (palette PNG, 255 = not labelled in VOC's (224, 224, 192)), `ImageSets/Segmentation/<split>.txt`, and
  `labelmap.txt` (`name:r,g,b::` per class, then `ignored` for 255) as datumaro and CVAT read it.
- cityscapes: `leftImg8bit/<split>/segassist/<stem>_leftImg8bit.<ext>` and
  `gtFine/<split>/segassist/<stem>_gtFine_labelTrainIds.png` (class index, 255 = not labelled); when every
  class is a Cityscapes train class by name, `_gtFine_labelIds.png` with Cityscapes' ids as well.
On any error the destination is left as it was (`labelformats.staging`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from engine.atomic import atomic_write_bytes
from engine.classes import SegClass, palette
from labelformats.base import IGNORE_INDEX, ExportItem, FormatError, Written
from labelformats.coco import coco_doc, write_coco_json
from labelformats.labelme import write_labelme
from labelformats.masks import IMAGES_DIR, check_labels, write_class_map, write_masks, write_png
from labelformats.staging import commit_staged, real_path, staged_folder
from labelformats.tables import CITYSCAPES_LABELS
from labelformats.voc import LABELMAP, voc_labelmap
from labelformats.yolo import write_yaml, yolo_lines

EXPORT_FORMATS = {
    "index": "grey PNGs, the pixel value is the class index (255 = not labelled), and classes.json",
    "palette": "palette PNGs coloured like the classes (the project's own form), and classes.json",
    "rgb": "RGB colour masks, one colour per class (VOC's (224, 224, 192) = not labelled), and classes.json",
    "coco": "COCO instances JSON, one annotation per connected region per class: RLE (exact) or polygons",
    "labelme": "labelme JSON per image: one exact mask shape per class, or polygons",
    "yolo": "YOLO segmentation: polygon .txt per image (normalised coordinates) and data.yaml",
    "voc": "Pascal VOC layout: JPEGImages, SegmentationClass palette PNGs, ImageSets/Segmentation splits",
    "cityscapes": "Cityscapes layout: leftImg8bit and gtFine *_labelTrainIds (and *_labelIds) per split",
}
LOSSLESS = ("index", "palette", "rgb", "coco", "labelme", "voc", "cityscapes")


def export(fmt: str, items: Iterable[ExportItem], classes: list[SegClass], out: str | Path, *,
           polygons: bool = False, tolerance: float = 1.0, progress: Callable[[int], None] | None = None,
           protect: Iterable[str | Path] = ()) -> int:
    """Write `items` to `out` in format `fmt`; returns the number of images.

    Everything is written into a hidden folder inside `out` first and moved into place only when all of
    it was written (see `commit_staged`): a failed or cancelled export leaves `out` as it was. No file
    is ever written over an item's image or a path in `protect` (`FormatError`)."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; known: {', '.join(EXPORT_FORMATS)}")
    out = Path(out)
    classes = list(classes)
    items = list(items)
    protected = {real_path(i.image_path) for i in items} | {real_path(p) for p in protect}
    with staged_folder(out) as stage:
        try:
            n = _export(fmt, items, classes, stage, Written(), polygons, tolerance, progress)
        except OSError as exc:  # name the file where the person will look for it, not in the hidden folder
            if exc.errno is None or str(stage) not in str(exc.filename or ""):
                raise
            raise OSError(exc.errno, exc.strerror, str(exc.filename).replace(str(stage), str(out))) from exc
        except FormatError as exc:
            raise FormatError(str(exc).replace(str(stage), str(out))) from exc
        commit_staged(stage, out, protected)
    return n


def _copy(src: Path, dst: Path, written: Written) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copyfile(src, dst)
    except OSError as exc:
        raise FormatError(f"{src}: cannot be copied to {dst} ({exc.strerror or exc})") from exc
    written.add(dst)


def _export(fmt, items, classes, out, written, polygons, tolerance, progress) -> int:
    out.mkdir(parents=True, exist_ok=True)
    splits = list(dict.fromkeys(i.split for i in items)) or ["train"]
    if fmt in ("index", "palette", "rgb"):
        for item in items:
            _copy(Path(item.image_path), out / IMAGES_DIR / Path(item.image_path).name, written)
        return write_masks(fmt, items, classes, out, written, progress)
    if fmt == "labelme":
        copies = []
        for item in items:
            copies.append(ExportItem(item.stem, out / Path(item.image_path).name, item.labels, item.split, item.loader))
            _copy(Path(item.image_path), copies[-1].image_path, written)
        return write_labelme(copies, classes, out, written, progress, polygons=polygons, tolerance=tolerance)
    done = 0

    def step(_item=None):
        nonlocal done
        done += 1
        if progress is not None:
            progress(done)

    if fmt == "coco":
        for split in splits:
            part = [i for i in items if i.split == split]
            for i in part:
                _copy(Path(i.image_path), out / "images" / split / Path(i.image_path).name, written)
            doc = coco_doc(part, classes, polygons=polygons, tolerance=tolerance, on_image=step)
            write_coco_json(out / "annotations" / f"instances_{split}.json", doc, written)
        return done
    if fmt == "yolo":
        for item in items:
            labels = check_labels(item, classes)
            _copy(Path(item.image_path), out / "images" / item.split / Path(item.image_path).name, written)
            path = out / "labels" / item.split / f"{item.stem}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = yolo_lines(labels, tolerance)
            path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            written.add(path)
            step()
        written.add(write_yaml(out / "data.yaml", classes, splits))
        return done
    if fmt == "voc":
        labelmap = voc_labelmap(classes)  # refuses class names it cannot hold, before anything is written
        pal = palette(classes)
        for item in items:
            labels = check_labels(item, classes)
            _copy(Path(item.image_path), out / "JPEGImages" / Path(item.image_path).name, written)
            written.add(write_png(out / "SegmentationClass" / f"{item.stem}.png", labels, "P", pal))
            step()
        for split in splits:
            path = out / "ImageSets" / "Segmentation" / f"{split}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"{i.stem}\n" for i in items if i.split == split), encoding="utf-8")
            written.add(path)
        write_class_map(out / "classes.json", classes, written)
        written.add(atomic_write_bytes(out / LABELMAP, labelmap.encode("utf-8")))
        return done
    if fmt == "cityscapes":
        ids = _cityscapes_ids(classes)
        for item in items:
            labels = check_labels(item, classes)
            src = Path(item.image_path)
            _copy(src, out / "leftImg8bit" / item.split / "segassist" / f"{item.stem}_leftImg8bit{src.suffix}",
                  written)
            base = out / "gtFine" / item.split / "segassist" / item.stem
            written.add(write_png(Path(f"{base}_gtFine_labelTrainIds.png"), labels, "L"))
            if ids is not None:
                written.add(write_png(Path(f"{base}_gtFine_labelIds.png"), ids[labels], "L"))
            step()
        write_class_map(out / "classes.json", classes, written)
        return done
    raise AssertionError(fmt)


def _cityscapes_ids(classes: list[SegClass]) -> np.ndarray | None:
    """Project class -> Cityscapes label id (255 -> 0, unlabeled), when every class is a Cityscapes train class."""
    by_name = {name: label_id for label_id, name, train, _ in CITYSCAPES_LABELS if train != IGNORE_INDEX}
    if not all(c.name in by_name for c in classes):
        return None
    lut = np.zeros(256, np.uint8)
    for i, c in enumerate(classes):
        lut[i] = by_name[c.name]
    return lut
