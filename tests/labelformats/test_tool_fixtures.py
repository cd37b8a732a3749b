"""Files written by other tools' own writers (labelme 6, datumaro; see fixtures/make_fixtures.py) import
pixel-exact: into the class indices the tool itself rasterises (labelme's shapes_to_label) or was given."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from app.core.storage.label_transfer import plan_import, run_import
from app.core.storage.project import Project
from engine.images import read_label
from labelformats import open_source
from labelformats.tables import CITYSCAPES_TRAIN

FIXTURES = Path(__file__).parent / "fixtures"
DATUMARO = ["background", "car", "person", "road"]
CASES = {
    # name: (folder, images (glob), classes, how to open the source)
    "labelme 6": ("labelme", "*.png", ["road", "car", "person", "sign", "pole"],
                  lambda f: open_source("labelme", f)),
    "datumaro voc_segmentation (RGB masks, labelmap.txt)": (
        "datumaro_voc", "JPEGImages/*", DATUMARO, lambda f: open_source("voc", f)),
    "datumaro coco_instances (polygon, RLE, box only)": (
        "datumaro_coco", "images/train/*", DATUMARO,
        lambda f: open_source("coco", f / "annotations" / "instances_train.json")),
    "datumaro camvid (label_colors.txt)": (
        "datumaro_camvid", "train/*", DATUMARO,
        lambda f: open_source("rgb", f / "trainannot", classes_file=f / "label_colors.txt")),
    "datumaro cityscapes (license plate 34)": (
        "datumaro_cityscapes", "leftImg8bit/train/*", [n for n, _ in CITYSCAPES_TRAIN],
        lambda f: open_source("cityscapes", f)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_other_tools_files_import_exactly(case, tmp_path):
    folder, images, classes, source = CASES[case]
    src = FIXTURES / folder
    for image in src.glob(images):
        shutil.copy(image, tmp_path / image.name)
    project = Project.open(tmp_path, classes)
    plan = plan_import(project, source(src))
    assert not plan.unmatched and not plan.mapping.added and not plan.mapping.dropped
    assert run_import(project, plan).images == len(list(src.glob("truth/*.png")))
    for truth_path in src.glob("truth/*.png"):
        stem = truth_path.stem
        entry = next(e for e in project.images if e.stem.startswith(stem))
        np.testing.assert_array_equal(read_label(project.label_path(entry)), read_label(truth_path), err_msg=case)


def test_coco_annotations_without_segmentation_are_skipped_and_counted():
    source = open_source("coco", FIXTURES / "datumaro_coco" / "annotations" / "instances_train.json")
    assert source.skipped == 1
    assert source.notes() == [f"{source.path}: 1 annotation without a segmentation (segmentation: [], such as "
                              "box-only annotations) skipped"]


def test_the_command_line_says_how_many_annotations_it_skipped(tmp_path, capsys):
    from app.convert_cli import main

    shutil.copy(FIXTURES / "datumaro_coco" / "images" / "train" / "frame_b.jpg", tmp_path / "frame_b.jpg")
    Project.open(tmp_path, DATUMARO).close()
    coco = FIXTURES / "datumaro_coco" / "annotations" / "instances_train.json"
    assert main(["import", str(tmp_path), "coco", str(coco)]) == 0
    assert "1 annotation without a segmentation (segmentation: [], such as box-only annotations) skipped" in \
        capsys.readouterr().out
