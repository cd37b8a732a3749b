"""The published forms: VOC palettes, CamVid's 32 and 11 colour forms, COCO panoptic, COCO's overlap rule."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from app.core.storage.label_transfer import plan_import, run_import
from app.core.storage.project import Project
from engine.images import read_label, write_image
from labelformats import FormatError, open_source
from labelformats.tables import CAMVID11, CAMVID32, VOC_CLASSES, camvid_colors, voc_palette


def _project(tmp_path, classes, names=("a",), size=(8, 10)):
    for name in names:
        write_image(tmp_path / f"{name}.png", np.zeros((*size, 3), np.uint8))
    return Project.open(tmp_path, list(classes))


def _labels(project, stem="a"):
    return read_label(project.label_path(project.entry(stem)))


def test_voc_palette_and_names(tmp_path):
    assert voc_palette()[:3] == [(0, 0, 0), (128, 0, 0), (0, 128, 0)] and voc_palette()[255] == (224, 224, 192)
    project = _project(tmp_path, ["background", "person", "car"])
    arr = np.zeros((8, 10), np.uint8)
    arr[2:5, 2:5] = VOC_CLASSES.index("person")
    arr[6:, 6:] = VOC_CLASSES.index("car")
    arr[0] = 255  # VOC's object border
    im = Image.fromarray(arr, mode="P")
    im.putpalette([v for c in voc_palette() for v in c])
    (tmp_path / "voc" / "SegmentationClass").mkdir(parents=True)
    im.save(tmp_path / "voc" / "SegmentationClass" / "a.png")
    run_import(project, plan_import(project, open_source("voc", tmp_path / "voc")))
    np.testing.assert_array_equal(_labels(project), np.select([arr == 15, arr == 7, arr == 255], [1, 2, 255], 0))


def _camvid_mask(path, names):
    colors = dict((n, c) for c, n in CAMVID32)
    rgb = np.array([[colors[n] for n in row] for row in names], np.uint8)
    Image.fromarray(rgb).save(path)


def test_camvid_32_colours_read_into_the_11_classes(tmp_path):
    assert len(camvid_colors(32)) == 31 and len({n for _, n in camvid_colors(11)}) == 11
    project = _project(tmp_path, [n for n, _ in CAMVID11], size=(2, 3))
    (tmp_path / "cv").mkdir()
    _camvid_mask(tmp_path / "cv" / "a_L.png", [["Road", "LaneMkgsDriv", "Void"], ["Car", "SUVPickupTruck", "Sky"]])
    run_import(project, plan_import(project, open_source("camvid11", tmp_path / "cv")))
    names = [n for n, _ in CAMVID11]
    road, car, sky = names.index("road"), names.index("car"), names.index("sky")
    np.testing.assert_array_equal(_labels(project), [[road, road, 255], [car, car, sky]])


def test_camvid_32_names_classes_and_adds_the_missing_ones(tmp_path):
    project = _project(tmp_path, ["Road"], size=(1, 3))
    (tmp_path / "cv").mkdir()
    _camvid_mask(tmp_path / "cv" / "a_L.png", [["Road", "Tree", "Void"]])
    with pytest.raises(FormatError, match=r"'Tree' \(in .*a_L\.png\)"):
        plan_import(project, open_source("camvid32", tmp_path / "cv"))
    result = run_import(project, plan_import(project, open_source("camvid32", tmp_path / "cv"), unknown="add"))
    assert result.added_classes == ["Tree"] and tuple(project.classes[1].color) == (128, 128, 0)
    np.testing.assert_array_equal(_labels(project), [[0, 1, 255]])


def test_coco_panoptic(tmp_path):
    project = _project(tmp_path, ["person", "grass"], size=(4, 4))
    ids = np.array([[0, 0, 5, 5], [0, 300, 5, 5], [70000, 70000, 70000, 70000], [70000, 70000, 70000, 70000]])
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
    (tmp_path / "panoptic").mkdir()
    Image.fromarray(rgb).save(tmp_path / "panoptic" / "a.png")
    doc = {"categories": [{"id": 1, "name": "person", "isthing": 1}, {"id": 190, "name": "grass", "isthing": 0}],
           "annotations": [{"image_id": 1, "file_name": "a.png", "segments_info": [
               {"id": 5, "category_id": 1}, {"id": 300, "category_id": 1}, {"id": 70000, "category_id": 190}]}]}
    (tmp_path / "panoptic.json").write_text(json.dumps(doc))
    run_import(project, plan_import(project, open_source("coco-panoptic", tmp_path / "panoptic.json")))
    np.testing.assert_array_equal(_labels(project), [[255, 255, 0, 0], [255, 0, 0, 0], [1] * 4, [1] * 4])


def test_coco_overlap_rule_smaller_over_larger_and_crowd_underneath(tmp_path):
    project = _project(tmp_path, ["table", "cup", "crowd"], size=(10, 10))
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "height": 10, "width": 10}],
           "categories": [{"id": 1, "name": "cup"}, {"id": 2, "name": "table"}, {"id": 3, "name": "crowd"}],
           "annotations": [
               {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": [[2, 2, 5, 2, 5, 5, 2, 5]]},
               {"id": 2, "image_id": 1, "category_id": 2, "iscrowd": 0, "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]]},
               {"id": 3, "image_id": 1, "category_id": 3, "iscrowd": 1,
                "segmentation": {"size": [10, 10], "counts": [0, 100]}}]}
    (tmp_path / "c.json").write_text(json.dumps(doc))
    run_import(project, plan_import(project, open_source("coco", tmp_path / "c.json")))
    labels = _labels(project)
    assert labels[3, 3] == 1 and labels[7, 7] == 0  # the cup (smaller) over the table, drawn after it in the file
    assert (labels != 2).all()  # the crowd region lies under both
