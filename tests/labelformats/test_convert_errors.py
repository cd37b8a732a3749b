"""`segassist-convert` answers every failure with one line naming the file and the problem, exit code 2:
full disks and permissions (simulated at the write calls, so this runs as root), deep JSON, bad class
names, int32 TIFF masks, odd segmentations."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
from PIL import Image

from app.convert_cli import main
from app.core.storage.project import Project


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("segassist-convert: ")
    return err


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES, errno.EDQUOT])
@pytest.mark.parametrize("fmt", ["index", "coco", "labelme"])
def test_a_write_that_fails_is_one_line_naming_the_file(make_project, tmp_path, monkeypatch, capsys, fmt, error):
    project, _ = make_project("p")
    project.close()
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if ".segassist-export" in str(src):
            raise OSError(error, os.strerror(error))  # as the kernel says it: no file named
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "out"
    assert main(["export", str(project.folder), fmt, str(out)]) == 2
    err = one_line(capsys)
    assert os.strerror(error) in err and str(out) in err
    assert not out.exists()


def _project(make_project):
    project, _ = make_project("dst", labelled=False)
    project.close()
    return project


def test_deep_json_is_one_line(make_project, tmp_path, capsys):
    project = _project(make_project)
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["import", str(project.folder), "coco", str(path)]) == 2
    assert str(path) in one_line(capsys)
    folder = tmp_path / "lm"
    folder.mkdir()
    (folder / "img_0.json").write_text('{"shapes": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert main(["import", str(project.folder), "labelme", str(folder)]) == 2
    assert "nested too deeply" in one_line(capsys)


@pytest.mark.parametrize("name", ["\udc80car", "", "  "])
def test_a_class_name_the_project_cannot_keep_is_one_line(make_project, tmp_path, capsys, name):
    project = _project(make_project)
    folder = tmp_path / "lm"
    folder.mkdir()
    shape = {"label": name, "points": [[1, 1], [20, 1], [20, 20]], "shape_type": "polygon"}
    (folder / "img_0.json").write_text(json.dumps({"shapes": [shape], "imagePath": "img_0.png",
                                                   "imageHeight": 48, "imageWidth": 64}))
    assert main(["import", str(project.folder), "labelme", str(folder), "--unknown", "add"]) == 2
    assert "class name" in one_line(capsys)
    assert main(["import", str(project.folder), "labelme", str(folder), "--unknown", "drop"]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_an_int32_tiff_mask_is_one_line(make_project, tmp_path, capsys):
    project = _project(make_project)
    folder = tmp_path / "masks"
    folder.mkdir()
    arr = np.full((48, 64), -7, np.int32)
    Image.fromarray(arr).save(folder / "img_0.tif")
    assert main(["import", str(project.folder), "index", str(folder)]) == 2
    assert "img_0.tif" in one_line(capsys)


@pytest.mark.parametrize("seg", ["polygon", 5, {"counts": None, "size": [48, 64]}, [["x", 1, 2, 3, 4, 5]]])
def test_an_odd_segmentation_is_one_line(make_project, tmp_path, capsys, seg):
    project = _project(make_project)
    doc = {"images": [{"id": 1, "file_name": "img_0.png", "height": 48, "width": 64}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": seg}],
           "categories": [{"id": 1, "name": "road"}]}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    assert main(["import", str(project.folder), "coco", str(path)]) == 2
    assert str(path) in one_line(capsys)


def test_a_read_only_project_is_one_line_on_import_and_exports_all_the_same(make_project, tmp_path, capsys,
                                                                           monkeypatch):
    src, _ = make_project("src")
    src.close()
    from app.core.storage.project_lock import ProjectLock

    def refuse(cls, folder, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(folder))

    monkeypatch.setattr(ProjectLock, "acquire", classmethod(refuse))
    assert main(["export", str(src.folder), "palette", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    assert main(["import", str(src.folder), "palette", str(tmp_path / "out"), "--classes",
                 str(tmp_path / "out" / "classes.json")]) == 2
    assert "cannot be written" in one_line(capsys)
    assert Project.open(src.folder, read_only=True).read_only
