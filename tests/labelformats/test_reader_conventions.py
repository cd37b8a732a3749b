"""Exports as other tools' readers see them: colours (void apart from every class), polygons in each
reader's own rasterisation (pycocotools for COCO, ultralytics' truncating OpenCV fill for YOLO, PIL as
labelme draws), and the layouts datumaro and CVAT open."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from scipy import ndimage

from app.core.storage.label_transfer import export_project
from engine.class_palette import CLASS_COLORS, VOID_COLOR, spaced_colors
from engine.classes import SegClass, as_classes, default_color, palette, void_color
from labelformats import open_source
from labelformats.base import ExportItem
from labelformats.coco import coco_doc
from labelformats.masks import read_class_map
from labelformats.yolo import yolo_lines
from tests.labelformats.conftest import CLASSES


def _lab(colors):
    from skimage.color import rgb2lab

    return rgb2lab(np.asarray(colors, float).reshape(-1, 1, 3) / 255).reshape(-1, 3)


def test_default_colours_are_spaced_and_never_the_void_colour():
    from skimage.color import deltaE_ciede2000

    lab = _lab(CLASS_COLORS[:20])
    d = deltaE_ciede2000(lab[:, None], lab[None])
    np.fill_diagonal(d, np.inf)
    assert d.min() > 20  # the closest two of the first 20 classes are far apart
    assert len(set(CLASS_COLORS)) == 255 and VOID_COLOR not in CLASS_COLORS
    assert deltaE_ciede2000(_lab(CLASS_COLORS), _lab([VOID_COLOR])).min() > 5
    assert [default_color(i) for i in range(3)] == list(CLASS_COLORS[:3])
    assert spaced_colors(6) == list(CLASS_COLORS[1:7])  # the table is what the generator makes


def test_void_gets_a_colour_no_class_has():
    classes = as_classes(["a", "b"])
    assert void_color(classes) == VOID_COLOR == (224, 224, 192)
    assert tuple(palette(classes)[3 * 255:]) == VOID_COLOR
    taken = [SegClass("a", (0, 0, 0)), SegClass("b", VOID_COLOR)]
    assert void_color(taken) not in [c.color for c in taken]


@pytest.mark.parametrize("fmt,mask_glob", [("palette", "masks/*.png"), ("rgb", "masks/*.png"),
                                           ("voc", "SegmentationClass/*.png")])
def test_a_reader_going_by_colour_tells_void_from_every_class(fmt, mask_glob, make_project, tmp_path):
    project, maps = make_project("src")
    export_project(project, fmt, tmp_path / "out")
    colours = {tuple(c.color): i for i, c in enumerate(project.classes)}
    for path in sorted((tmp_path / "out").glob(mask_glob)):
        rgb = np.asarray(Image.open(path).convert("RGB"))  # what OpenCV, datumaro or an eye sees
        labels = maps[path.stem]
        seen = np.array([[colours.get(tuple(p), 255) for p in row] for row in rgb], np.uint8)
        np.testing.assert_array_equal(seen, labels)
        assert (rgb[labels == 255] == VOID_COLOR).all()


# ---- polygons in each reader's own rasterisation ------------------------------------------------------

def _thin_and_square() -> np.ndarray:
    labels = np.full((20, 24), 255, np.uint8)
    labels[0:10, 0:10] = 0                       # a 10x10 square in the corner
    labels[10:20, 14:24] = 1                     # ... and in the opposite corner: last row and column
    for i in range(8):                           # a one-pixel diagonal line
        labels[11 + i, 1 + i] = 2
    labels[3, 14:22] = 3                         # a one-pixel horizontal line
    labels[6, 20] = 4                            # a single pixel
    return labels


def _coco_masks(labels, tolerance):
    doc = coco_doc([ExportItem("a", "a.png", labels)], as_classes(CLASSES), polygons=True, tolerance=tolerance)
    h, w = labels.shape
    out = {}
    for ann in doc["annotations"]:
        m = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], h, w))).astype(bool)
        assert ann["area"] == m.sum()
        out.setdefault(ann["category_id"] - 1, []).append(m)
    return out


def _yolo_masks(labels, tolerance):
    """YOLO rows as ultralytics reads them: float32, scaled by the size, truncated, filled by OpenCV."""
    h, w = labels.shape
    out = {}
    for line in yolo_lines(labels, tolerance):
        cls, *values = line.split()
        xy = np.array(values, np.float32).reshape(-1, 2) * np.array([w, h], np.float32)
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [xy.astype(np.int32)], 1)
        out.setdefault(int(cls), []).append(m.astype(bool))
    return out


@pytest.mark.parametrize("reader", [_coco_masks, _yolo_masks])
def test_polygons_rasterise_back_exactly_at_tolerance_0(reader):
    labels = _thin_and_square()
    masks = reader(labels, 0)
    for c in range(5):
        assert len(masks[c]) == 1
        np.testing.assert_array_equal(masks[c][0], labels == c, err_msg=f"class {c}")


@pytest.mark.parametrize("reader", [_coco_masks, _yolo_masks])
def test_polygons_stay_within_the_tolerance_of_random_regions(reader):
    from tests.labelformats.conftest import label_map

    for seed in range(4):
        labels = label_map(seed)
        for c, found in reader(labels, 1.0).items():
            region = ndimage.binary_fill_holes(labels == c)
            got = np.logical_or.reduce(found)
            near = cv2.dilate((region ^ cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8),
                                                  borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool))
                              .astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            assert not ((got ^ region) & ~near).any(), f"seed {seed}, class {c}: a pixel off by more than 1 px"


def test_a_10px_square_exports_with_area_100_and_keeps_the_last_row_and_column(tmp_path):
    labels = _thin_and_square()
    doc = coco_doc([ExportItem("a", "a.png", labels)], as_classes(CLASSES), polygons=True, tolerance=1.0)
    areas = {a["category_id"] - 1: a["area"] for a in doc["annotations"]}
    assert areas[0] == areas[1] == 100 and areas[2] == 8 and areas[3] == 8 and areas[4] == 1


def test_labelme_polygons_render_back_in_pil_with_enclosed_regions_on_top(make_project, tmp_path):
    from labelformats.labelme import shape_mask

    project, maps = make_project("src", n=1)
    export_project(project, "labelme", tmp_path / "lm", polygons=True, tolerance=0)
    doc = json.loads((tmp_path / "lm" / "img_0.json").read_text())
    labels = maps["img_0"]
    drawn = np.full(labels.shape, 255, np.uint8)
    for i, shape in enumerate(doc["shapes"]):
        drawn[shape_mask(tmp_path / "lm" / "img_0.json", i, shape, labels.shape)] = CLASSES.index(shape["label"])
    # Exact but for the unlabelled hole, which polygons cannot hold.
    differ = drawn != labels
    assert (labels[differ] == 255).all() and differ.sum() == (labels[9:16, 9:21] == 255).sum()


# ---- layouts --------------------------------------------------------------------------------------------

def test_layouts_datumaro_and_cvat_open(make_project, tmp_path):
    project, maps = make_project("src")
    export_project(project, "coco", tmp_path / "coco")
    assert sorted(p.name for p in (tmp_path / "coco" / "images" / "train").iterdir()) == [f"{s}.png" for s in maps]
    export_project(project, "voc", tmp_path / "voc")
    lines = (tmp_path / "voc" / "labelmap.txt").read_text().splitlines()
    assert lines[0] == "# label:color_rgb:parts:actions"
    assert lines[1:] == [f"{c.name}:{','.join(map(str, c.color))}::" for c in project.classes] + \
        ["ignored:224,224,192::"]
    for fmt in ("index", "palette", "rgb"):
        out = tmp_path / fmt
        export_project(project, fmt, out)
        assert sorted(p.stem for p in (out / "masks").iterdir()) == sorted(maps)
        assert sorted(p.stem for p in (out / "images").iterdir()) == sorted(maps)
        meta = json.loads((out / "dataset_meta.json").read_text())
        assert [meta["label_map"][str(i)] for i in range(len(CLASSES))] == CLASSES
        table = read_class_map(out / "dataset_meta.json")  # and it serves as the class map on import
        assert table.names == dict(enumerate(CLASSES))
        if fmt != "index":
            assert meta["segmentation_colors"][255] == list(VOID_COLOR) == list(table.unlabelled_color)
            assert table.colors == {i: tuple(c.color) for i, c in enumerate(project.classes)}
        assert open_source(fmt, out, classes_file=out / "dataset_meta.json").items()
