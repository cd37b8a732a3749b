"""Round trips through other tools' readers and writers: how many label maps come back identical.

    python -m bench.formats --round-trips                 # 10 images of 320x240 (seconds)

Rows, per format and direction:
- `ours -> ours`: export, then import into a fresh project.
- `ours -> READER`: export, then read back the way the other tool's reader does: pycocotools'
  `annToMask` (COCO, drawn largest first), ultralytics' YOLO masks (float32 rows scaled by the image
  size, truncated to integers, filled by OpenCV), labelme's `shapes_to_label` (PIL; masks cropped at
  integer corners), PIL's colours for palette/RGB/VOC masks (a reader that goes by colour), PIL's values
  for index and Cityscapes masks.
- `TOOL -> ours`: the files that labelme 6 and datumaro wrote (tests/labelformats/fixtures), imported.
Polygon forms (COCO and labelme with polygons, YOLO) lose unlabelled holes and move boundaries by up to
`tolerance` (1 px; rows ending in 0 use tolerance 0, where only the holes remain): their differing
pixels are that, and the table counts them. Every generated label map has one unlabelled hole
(W/17 x H/25 px: 162 px at 320x240).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from app.core.storage.label_transfer import export_project, plan_import, run_import
from app.core.storage.project import Project
from engine.images import read_label
from labelformats import open_source
from labelformats.labelme import shape_mask
from labelformats.masks import read_class_map

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "labelformats" / "fixtures"


def _by_colour(out: Path, pattern: str) -> dict[str, np.ndarray]:
    table = read_class_map(out / "classes.json")
    lut = {c: i for i, c in table.colors.items()}
    maps = {}
    for path in sorted(out.glob(pattern)):
        rgb = np.asarray(Image.open(path).convert("RGB")).astype(np.int64)
        code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        labels = np.full(code.shape, 255, np.uint8)
        for (r, g, b), i in ((k, v) for k, v in lut.items()):
            labels[code == (r << 16) | (g << 8) | b] = i
        maps[path.stem] = labels
    return maps


def _by_value(out: Path, pattern: str, strip: str = "") -> dict[str, np.ndarray]:
    return {p.stem.removesuffix(strip): np.asarray(Image.open(p)) for p in sorted(out.glob(pattern))}


def _pycocotools(out: Path) -> dict[str, np.ndarray]:
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out / "annotations" / "instances_train.json"))
    maps = {}
    for img in coco.loadImgs(coco.getImgIds()):
        labels = np.full((img["height"], img["width"]), 255, np.uint8)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
        for ann in sorted(anns, key=lambda a: -a["area"]):
            labels[coco.annToMask(ann).astype(bool)] = ann["category_id"] - 1
        maps[Path(img["file_name"]).stem] = labels
    return maps


def _ultralytics(out: Path) -> dict[str, np.ndarray]:
    import yaml

    names = yaml.safe_load((out / "data.yaml").read_text())["names"]
    assert names
    maps = {}
    for txt in sorted(out.glob("labels/*/*.txt")):
        image = next((out / "images" / txt.parent.name).glob(txt.stem + ".*"))
        w, h = Image.open(image).size
        rows = []
        for line in txt.read_text().splitlines():
            cls, *values = line.split()
            xy = np.array(values, np.float32).reshape(-1, 2) * np.array([w, h], np.float32)
            rows.append((int(cls), xy.astype(np.int32)))
        labels = np.full((h, w), 255, np.uint8)
        masks = []
        for cls, poly in rows:
            m = np.zeros((h, w), np.uint8)
            cv2.fillPoly(m, [poly], 1)
            masks.append((-int(m.sum()), cls, m.astype(bool)))
        for _, cls, m in sorted(masks, key=lambda t: t[0]):  # ultralytics' overlap masks: smaller over larger
            labels[m] = cls
        maps[txt.stem] = labels
    return maps


def _labelme(out: Path) -> dict[str, np.ndarray]:
    table = read_class_map(out / "classes.json")
    index = {n: i for i, n in table.names.items()}
    maps = {}
    for path in sorted(out.glob("*.json")):
        if path.name == "classes.json":
            continue
        doc = json.loads(path.read_text())
        labels = np.full((doc["imageHeight"], doc["imageWidth"]), 255, np.uint8)
        for i, shape in enumerate(doc["shapes"]):
            labels[shape_mask(path, i, shape, labels.shape)] = index[shape["label"]]
        maps[path.stem] = labels
    return maps


# (row name, export format, export options, the reference reader and its name)
EXPORTS: list[tuple[str, str, dict, Callable[[Path], dict] | None, str]] = [
    ("index", "index", {}, lambda o: _by_value(o, "masks/*.png"), "PIL values"),
    ("palette", "palette", {}, lambda o: _by_colour(o, "masks/*.png"), "PIL colours"),
    ("rgb", "rgb", {}, lambda o: _by_colour(o, "masks/*.png"), "PIL colours"),
    ("voc", "voc", {}, lambda o: _by_colour(o, "SegmentationClass/*.png"), "PIL colours"),
    ("cityscapes", "cityscapes", {},
     lambda o: _by_value(o, "gtFine/*/*/*_labelTrainIds.png", "_gtFine_labelTrainIds"), "PIL values"),
    ("coco", "coco", {}, _pycocotools, "pycocotools"),
    ("coco polygons", "coco", {"polygons": True}, _pycocotools, "pycocotools"),
    ("coco polygons 0", "coco", {"polygons": True, "tolerance": 0}, _pycocotools, "pycocotools"),
    ("labelme", "labelme", {}, _labelme, "labelme (PIL)"),
    ("labelme polygons", "labelme", {"polygons": True}, _labelme, "labelme (PIL)"),
    ("labelme polygons 0", "labelme", {"polygons": True, "tolerance": 0}, _labelme, "labelme (PIL)"),
    ("yolo", "yolo", {}, _ultralytics, "ultralytics"),
    ("yolo 0", "yolo", {"tolerance": 0}, _ultralytics, "ultralytics"),
]

FIXTURE_CASES = [  # (row name, folder, images, classes, source)
    ("labelme 6", "labelme", "*.png", ["road", "car", "person", "sign", "pole"], lambda f: open_source("labelme", f)),
    ("datumaro voc", "datumaro_voc", "JPEGImages/*", None, lambda f: open_source("voc", f)),
    ("datumaro coco", "datumaro_coco", "images/train/*", None,
     lambda f: open_source("coco", f / "annotations" / "instances_train.json")),
    ("datumaro camvid", "datumaro_camvid", "train/*", None,
     lambda f: open_source("rgb", f / "trainannot", classes_file=f / "label_colors.txt")),
    ("datumaro cityscapes", "datumaro_cityscapes", "leftImg8bit/train/*", "cityscapes",
     lambda f: open_source("cityscapes", f)),
]


def _our_source(fmt: str, out: Path):
    if fmt == "coco":
        return open_source("coco", out / "annotations" / "instances_train.json")
    if fmt == "labelme":
        return open_source("labelme", out)
    return open_source(fmt, out, classes_file=out / "classes.json")


def _compare(got: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> tuple[int, int, float, int]:
    """(images, identical, mean and max differing pixels); a missing image counts all its pixels."""
    diffs = [int((got[k] != v).sum()) if k in got and got[k].shape == v.shape else v.size for k, v in truth.items()]
    return len(diffs), sum(d == 0 for d in diffs), float(np.mean(diffs)), max(diffs)


def _import_all(folder: Path, classes, source) -> dict[str, np.ndarray]:
    project = Project.open(folder, classes)
    try:
        run_import(project, plan_import(project, source))
        return {e.stem: read_label(project.label_path(e)) for e in project.images if project.label_path(e).exists()}
    finally:
        project.close()


def round_trips(root: Path, make_project, n: int, h: int, w: int, classes: list[str]) -> list[tuple]:
    """The table's rows: (format, direction, images, identical, mean differing, max differing)."""
    make_project(root / "src", n, h, w, labelled=True)
    project = Project.open(root / "src")
    truth = {e.stem: read_label(project.label_path(e)) for e in project.images}
    rows = []
    try:
        for name, fmt, opts, reader, reader_name in EXPORTS:
            out = root / name.replace(" ", "-")
            export_project(project, fmt, out, **opts)
            if fmt != "yolo":
                dst = root / f"dst-{out.name}"
                make_project(dst, n, h, w, labelled=False)
                source = _our_source(fmt, out)
                rows.append((name, "ours -> ours", *_compare(_import_all(dst, None, source), truth)))
            rows.append((name, f"ours -> {reader_name}", *_compare(reader(out), truth)))
    finally:
        project.close()
    for name, folder, images, fixture_classes, source in FIXTURE_CASES:
        src = FIXTURES / folder
        dst = root / f"fixture-{folder}"
        dst.mkdir()
        for image in src.glob(images):
            shutil.copy(image, dst / image.name)
        if fixture_classes == "cityscapes":
            from labelformats.tables import CITYSCAPES_TRAIN

            fixture_classes = [n for n, _ in CITYSCAPES_TRAIN]
        fixture_classes = fixture_classes or ["background", "car", "person", "road"]
        expected = {p.stem: read_label(p) for p in src.glob("truth/*.png")}
        got = {k.removesuffix("_leftImg8bit"): v for k, v in _import_all(dst, fixture_classes, source(src)).items()}
        rows.append((name.split()[0], f"{name} -> ours", *_compare(got, expected)))
    return rows


def print_table(rows: list[tuple]) -> None:
    print(f"{'format':<19} {'direction':<34} {'images':>6} {'identical':>9} {'mean diff px':>12} {'max diff px':>11}")
    for fmt, direction, n, same, mean, top in rows:
        print(f"{fmt:<19} {direction:<34} {n:>6} {same:>9} {mean:>12.1f} {top:>11}")
