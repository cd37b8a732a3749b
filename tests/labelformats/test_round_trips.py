"""project -> format -> project gives the same label maps for every lossless format."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.storage.label_transfer import export_project, plan_import, run_import
from app.core.storage.project import Project
from engine.images import read_label
from labelformats import LOSSLESS, open_source


def _import_source(fmt, out):
    classes = out / "classes.json"
    if fmt == "coco":
        return open_source("coco", out / "annotations" / "instances_train.json")
    if fmt == "labelme":
        return open_source("labelme", out)
    return open_source(fmt, out, classes_file=classes)


@pytest.mark.parametrize("fmt", LOSSLESS)
def test_round_trip_is_exact(fmt, make_project, tmp_path):
    project, maps = make_project("src")
    out = tmp_path / "out"
    assert export_project(project, fmt, out) == len(maps)
    target, _ = make_project("dst", labelled=False)
    plan = plan_import(target, _import_source(fmt, out))
    assert not plan.unmatched
    result = run_import(target, plan)
    assert result.images == len(maps)
    reopened = Project.open(target.folder)
    for stem, labels in maps.items():
        got = read_label(reopened.label_path(reopened.entry(stem)))
        np.testing.assert_array_equal(got, labels, err_msg=f"{fmt}: {stem}")
        assert reopened.entry(stem).status == "edited"


def test_palette_without_a_class_map_matches_by_colour(make_project, tmp_path):
    project, maps = make_project("src")
    export_project(project, "palette", tmp_path / "out")
    (tmp_path / "out" / "classes.json").unlink()
    target, _ = make_project("dst", labelled=False)
    run_import(target, plan_import(target, open_source("palette", tmp_path / "out")))
    for stem, labels in maps.items():
        np.testing.assert_array_equal(read_label(target.label_path(target.entry(stem))), labels)


def test_cityscapes_names_write_label_ids_that_read_back(make_project, tmp_path):
    classes = ["road", "sidewalk", "building", "car", "sky"]
    project, maps = make_project("src", classes=classes)
    out = tmp_path / "cs"
    export_project(project, "cityscapes", out, val_fraction=0.34)
    ids = sorted(out.glob("gtFine/*/segassist/*_gtFine_labelIds.png"))
    assert len(ids) == len(maps) and {p.parts[-3] for p in ids} == {"train", "val"}
    assert set(np.unique(read_label(ids[0]))) <= {0, 7, 8, 11, 26, 23}
    target, _ = make_project("dst", labelled=False, classes=classes)
    run_import(target, plan_import(target, open_source("cityscapes", out)))  # the published table, no class map
    for stem, labels in maps.items():
        np.testing.assert_array_equal(read_label(target.label_path(target.entry(stem))), labels)


def test_sixteen_bit_masks_with_another_numbering(make_project, tmp_path):
    from PIL import Image

    project, maps = make_project("dst", labelled=False)
    src = tmp_path / "masks16"
    src.mkdir()
    numbering = {0: 1000, 1: 2000, 2: 3000, 3: 4000, 4: 40000}
    for stem, labels in maps.items():
        arr = np.full(labels.shape, 65535, np.uint16)
        for ours, theirs in numbering.items():
            arr[labels == ours] = theirs
        Image.fromarray(arr).save(src / f"{stem}_mask.png")
    (src / "names.txt").write_text("".join(f"{theirs} {project.classes[ours].name}\n"
                                           for ours, theirs in numbering.items()))
    source = open_source("index", src, classes_file=src / "names.txt", ignore=65535)
    run_import(project, plan_import(project, source))
    for stem, labels in maps.items():
        np.testing.assert_array_equal(read_label(project.label_path(project.entry(stem))), labels)
