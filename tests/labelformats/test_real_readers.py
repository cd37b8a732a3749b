"""Our files read back by the reference readers: pycocotools, labelme's JSON layout, YOLO-seg lines."""

from __future__ import annotations

import contextlib
import io
import json

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from app.core.storage.label_transfer import export_project
from labelformats.labelme import shape_mask
from labelformats.yolo import parse_line
from tests.labelformats.conftest import CLASSES


def test_coco_through_pycocotools(make_project, tmp_path):
    project, maps = make_project("src")
    export_project(project, "coco", tmp_path / "out")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(tmp_path / "out" / "annotations" / "instances_train.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == CLASSES
    for img in coco.loadImgs(coco.getImgIds()):
        labels = maps[img["file_name"].rsplit(".", 1)[0]]
        rebuilt = np.full(labels.shape, 255, np.uint8)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]])):
            m = coco.annToMask(ann).astype(bool)
            assert ann["area"] == m.sum() == mask_utils.area(ann["segmentation"])
            n, _ = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
            assert n == 2, "one annotation per connected region"
            assert not (rebuilt[m] != 255).any(), "regions do not overlap"
            rebuilt[m] = ann["category_id"] - 1
        np.testing.assert_array_equal(rebuilt, labels)


def test_coco_polygons_within_tolerance(make_project, tmp_path):
    project, maps = make_project("src", n=1)
    export_project(project, "coco", tmp_path / "out", polygons=True, tolerance=1.0)
    doc = json.loads((tmp_path / "out" / "annotations" / "instances_train.json").read_text())
    labels = maps["img_0"]
    for ann in doc["annotations"]:
        assert isinstance(ann["segmentation"], list) and all(len(p) >= 6 for p in ann["segmentation"])
        m = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], *labels.shape))).astype(bool)
        truth = (labels == ann["category_id"] - 1).astype(np.uint8)
        contours, _ = cv2.findContours(truth, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        outer = cv2.drawContours(np.zeros_like(truth), contours, -1, 1, cv2.FILLED)  # holes filled: polygons lose them
        # The filled polygon lies on the class's pixels up to its boundary (1 px tolerance, 1 px outline).
        grown = cv2.dilate(outer, np.ones((5, 5), np.uint8)).astype(bool)
        assert m.any() and not (m & ~grown).any()
        assert abs(ann["area"] - m.sum()) <= 0.5 * m.sum()


def test_labelme_files_have_its_layout_and_render_back(make_project, tmp_path):
    project, maps = make_project("src")
    out = tmp_path / "lm"
    export_project(project, "labelme", out)
    for stem, labels in maps.items():
        doc = json.loads((out / f"{stem}.json").read_text())
        assert set(doc) >= {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"}
        assert doc["imageData"] is None and doc["imagePath"] == f"{stem}.png" and (out / doc["imagePath"]).exists()
        assert (doc["imageHeight"], doc["imageWidth"]) == labels.shape
        rebuilt = np.full(labels.shape, 255, np.uint8)
        for i, shape in enumerate(doc["shapes"]):
            assert set(shape) >= {"label", "points", "group_id", "shape_type", "flags"}
            rebuilt[shape_mask(out / f"{stem}.json", i, shape, labels.shape)] = CLASSES.index(shape["label"])
        np.testing.assert_array_equal(rebuilt, labels)


def test_labelme_renders_polygons_rectangles_circles_later_over_earlier(tmp_path):
    from app.core.storage.label_transfer import plan_import, run_import
    from app.core.storage.project import Project
    from engine.images import read_label, write_image
    from labelformats import open_source

    write_image(tmp_path / "p.png", np.zeros((20, 30, 3), np.uint8))
    shapes = [{"label": "road", "points": [[0, 0], [29, 19]], "shape_type": "rectangle"},
              {"label": "car", "points": [[10, 10], [10, 14]], "shape_type": "circle"},
              {"label": "sky", "points": [[0, 0], [5, 0], [0, 5]], "shape_type": "polygon"}]
    doc = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": "p.png", "imageData": None,
           "imageHeight": 20, "imageWidth": 30}
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "p.json").write_text(json.dumps(doc))
    project = Project.open(tmp_path, ["road", "car", "sky"])
    run_import(project, plan_import(project, open_source("labelme", tmp_path / "lm")))
    labels = read_label(project.label_path(project.entry("p")))
    assert labels[19, 29] == 0 and labels[10, 10] == 1 and labels[14, 10] == 1 and labels[10, 14] == 1
    assert labels[0, 0] == 2 and labels[1, 1] == 2 and labels[18, 1] == 0
    assert labels[10, 16] == 0  # outside the radius-4 circle


def test_yolo_lines_parse_back_and_data_yaml(make_project, tmp_path):
    import yaml

    project, maps = make_project("src")
    out = tmp_path / "yolo"
    export_project(project, "yolo", out, val_fraction=0.34)
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == dict(enumerate(CLASSES)) and data["train"] == "images/train" and data["val"] == "images/val"
    txts = sorted(out.glob("labels/*/*.txt"))
    assert len(txts) == len(maps)
    for txt in txts:
        labels = maps[txt.stem]
        assert (out / "images" / txt.parent.name / f"{txt.stem}.png").exists()
        h, w = labels.shape
        classes_seen = set()
        for line in txt.read_text().splitlines():
            cls, xy = parse_line(line)
            assert 0 <= cls < len(CLASSES) and (xy >= 0).all() and (xy <= 1).all()
            classes_seen.add(cls)
            poly = np.round(xy * [w, h]).astype(np.int32)
            filled = np.zeros((h, w), np.uint8)
            cv2.fillPoly(filled, [poly], 1)
            if filled.sum() >= 16:  # polygons cover their class (holes lost; tiny regions become boxes)
                assert (labels[filled.astype(bool)] == cls).mean() > 0.5
        assert classes_seen == set(np.unique(labels[labels != 255]).tolist())
