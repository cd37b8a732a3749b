"""Bad input stops an import with a message naming the file, before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from app.core.storage.label_transfer import export_project, plan_import, run_import
from labelformats import FormatError, open_source


def _snapshot(project):
    folder = project.folder
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _labelme(path, shapes, h=48, w=64, image="img_0.png"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image,
                                "imageData": None, "imageHeight": h, "imageWidth": w}))
    return path


def _expect_nothing_written(project, source, match, **kwargs):
    before = _snapshot(project)
    with pytest.raises(FormatError, match=match):
        run_import(project, plan_import(project, source, **kwargs))
    assert _snapshot(project) == before


def test_json_that_is_not_the_format(make_project, tmp_path):
    project, _ = make_project("p", labelled=False)
    bad = tmp_path / "x" / "img_0.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(FormatError, match=r"img_0\.json: not a labelme file"):
        open_source("labelme", bad.parent).items()
    with pytest.raises(FormatError, match=r"img_0\.json: not a COCO instances file"):
        open_source("coco", bad)
    bad.write_text("{ not json")
    with pytest.raises(FormatError, match=r"img_0\.json: not valid JSON"):
        open_source("coco", bad)


def test_unknown_class_is_named_and_can_be_added_mapped_or_dropped(make_project, tmp_path):
    project, _ = make_project("p", labelled=False)
    path = _labelme(tmp_path / "lm" / "img_0.json", [{"label": "tractor", "points": [[1, 1], [9, 9]],
                                                      "shape_type": "rectangle"}])
    _expect_nothing_written(project, open_source("labelme", path.parent), r"'tractor' \(in .*img_0\.json\)")
    plan = plan_import(project, open_source("labelme", path.parent), overrides={"tractor": "car"})
    assert plan.mapping.rows() == [("tractor", "2: car")]
    plan = plan_import(project, open_source("labelme", path.parent), unknown="drop")
    assert plan.mapping.targets == {0: 255}
    plan = plan_import(project, open_source("labelme", path.parent), unknown="add")
    result = run_import(project, plan)
    assert result.added_classes == ["tractor"] and project.classes[-1].name == "tractor"


def test_mask_of_the_wrong_size(make_project, tmp_path):
    project, _ = make_project("p", labelled=False)
    (tmp_path / "m").mkdir()
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "m" / "img_1.png")
    _expect_nothing_written(project, open_source("index", tmp_path / "m"), r"img_1\.png: labels of 10x10 pixels")
    _labelme(tmp_path / "lm" / "img_0.json", [], h=10, w=10)
    _expect_nothing_written(project, open_source("labelme", tmp_path / "lm"),
                            r"img_0\.json: drawn on an image of 10x10")


def test_polygon_outside_the_image(make_project, tmp_path):
    project, _ = make_project("p", labelled=False)
    _labelme(tmp_path / "lm" / "img_0.json", [{"label": "car", "points": [[1, 1], [90, 5], [3, 30]],
                                               "shape_type": "polygon"}])
    _expect_nothing_written(project, open_source("labelme", tmp_path / "lm"),
                            r"img_0\.json: shape 0 \('car'\) has the point \(90, 5\) outside the image")
    coco = {"images": [{"id": 1, "file_name": "img_0.png", "height": 48, "width": 64}],
            "categories": [{"id": 1, "name": "car"}],
            "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "iscrowd": 0,
                             "segmentation": [[1, 1, 200, 1, 1, 30]]}]}
    (tmp_path / "c.json").write_text(json.dumps(coco))
    _expect_nothing_written(project, open_source("coco", tmp_path / "c.json"),
                            r"c\.json: image 'img_0\.png'.* annotation 7 has a polygon outside the image")


def test_colour_not_in_the_table(make_project, tmp_path):
    src, _ = make_project("src")
    export_project(src, "rgb", tmp_path / "rgb")
    arr = np.asarray(Image.open(tmp_path / "rgb" / "masks" / "img_2.png")).copy()
    arr[5, 5] = (1, 2, 3)
    Image.fromarray(arr).save(tmp_path / "rgb" / "masks" / "img_2.png")
    project, _ = make_project("p", labelled=False)
    source = open_source("rgb", tmp_path / "rgb", classes_file=tmp_path / "rgb" / "classes.json")
    _expect_nothing_written(project, source,
                            r"img_2\.png: 1 pixels have colours that are not in the colour table: \(1, 2, 3\)")


def test_index_value_without_a_class_and_colour_mask_as_index(make_project, tmp_path):
    project, _ = make_project("p", labelled=False)
    (tmp_path / "m").mkdir()
    arr = np.zeros((48, 64), np.uint8)
    arr[3, 3] = 9
    Image.fromarray(arr).save(tmp_path / "m" / "img_0.png")
    _expect_nothing_written(project, open_source("index", tmp_path / "m"), r"'value 9' \(in .*img_0\.png\)")
    Image.fromarray(np.dstack([arr, arr * 0, arr])).save(tmp_path / "m" / "img_0.png")
    _expect_nothing_written(project, open_source("index", tmp_path / "m"), r"img_0\.png: a RGB colour image")


def test_export_failure_leaves_no_files(make_project, tmp_path):
    project, _ = make_project("p")
    project.recolor_class(1, project.classes[2].color)  # two classes of one colour: RGB cannot tell them apart
    out = tmp_path / "out"
    with pytest.raises(FormatError, match="share a colour"):
        export_project(project, "rgb", out)
    assert not [p for p in out.rglob("*") if p.is_file()]
