"""An export never writes inside the project or over an image, and a failed one leaves its folder as it was.

Failures are simulated at the write calls (ENOSPC from `os.replace`, a copy that fills the disk half
way), so the tests run as root too.
"""

from __future__ import annotations

import errno
import os
import shutil

import numpy as np
import pytest

from app.core.storage.label_transfer import export_project
from labelformats import EXPORT_FORMATS, ExportItem, FormatError, export


def tree(folder):
    """Every file under `folder` with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt, inside", [("index", "."), ("rgb", "labels"), ("palette", ".segassist/x"),
                                         ("labelme", "models")])
def test_an_export_into_the_project_is_refused_and_changes_nothing(make_project, fmt, inside):
    project, _ = make_project("p")
    before = tree(project.folder)
    with pytest.raises(FormatError, match="inside the project folder"):
        export_project(project, fmt, project.folder / inside)
    assert tree(project.folder) == before


def test_an_export_never_writes_over_an_image(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    image = images / "scene.png"
    image.write_bytes(b"the person's image")
    labels = np.zeros((4, 5), np.uint8)
    item = ExportItem("scene", image, labels)
    from engine.classes import as_classes

    # an index export copies each image to images/<name> beside masks/: here that is the image itself
    with pytest.raises(FormatError, match="write over this image"):
        export("index", [item], as_classes(["a", "b"]), tmp_path)
    assert image.read_bytes() == b"the person's image"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]
    assert sorted(p.name for p in images.iterdir()) == ["scene.png"]
    (tmp_path / "images" / "link").symlink_to(tmp_path)  # the same folder by another name
    with pytest.raises(FormatError, match="write over this image"):
        export("index", [item], as_classes(["a", "b"]), images / "link")
    assert image.read_bytes() == b"the person's image"


def _fail_at(monkeypatch, call: int):
    """`os.replace` raises ENOSPC (no file named, as the kernel says it) at its `call`-th use."""
    real = os.replace
    count = {"n": 0}

    def replace(src, dst, *args, **kwargs):
        count["n"] += 1
        if count["n"] == call:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return count


@pytest.mark.parametrize("fmt", list(EXPORT_FORMATS))
def test_a_failed_re_export_leaves_the_earlier_export_as_it_was(make_project, tmp_path, monkeypatch, fmt):
    project, maps = make_project("p")
    out = tmp_path / "out"
    export_project(project, fmt, out)
    earlier = tree(out)
    # the labels change, then the export is written again over the earlier one and fails at each write in turn
    from engine.images import write_label

    for stem, labels in maps.items():
        write_label(project.label_path(project.entry(stem)), np.where(labels == 1, 2, labels).astype(np.uint8),
                    project.classes)
    calls = _fail_at(monkeypatch, 0)
    export_project(project, fmt, tmp_path / "count")
    total = calls["n"]
    assert total > 2
    for k in range(1, total + 1, max(1, total // 7)):
        monkeypatch.undo()
        _fail_at(monkeypatch, k)
        with pytest.raises(OSError):
            export_project(project, fmt, out)
        assert tree(out) == earlier, f"{fmt}: failure at write {k} of {total} changed the earlier export"
    monkeypatch.undo()
    export_project(project, fmt, out)
    assert tree(out) != earlier and not [p for p in out.iterdir() if p.name.startswith(".segassist-export")]


@pytest.mark.parametrize("fmt", ["labelme", "coco", "yolo", "voc", "cityscapes"])
def test_a_copy_that_fills_the_disk_leaves_no_truncated_image(make_project, tmp_path, monkeypatch, fmt):
    project, _ = make_project("p")
    real = shutil.copyfile

    def half_then_full(src, dst, *args, **kwargs):
        with open(src, "rb") as f:
            data = f.read()
        with open(dst, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(shutil, "copyfile", half_then_full)
    out = tmp_path / "new" / "out"
    with pytest.raises((OSError, FormatError)):
        export_project(project, fmt, out)
    assert not (tmp_path / "new").exists()  # the folders it made are gone again
    monkeypatch.setattr(shutil, "copyfile", real)
    export_project(project, fmt, out)
    copies = [p for p in out.rglob("*.png") if p.read_bytes().startswith(b"\x89PNG") and "img_" in p.name]
    originals = {e.path.name: e.path.read_bytes() for e in project.images}
    assert any(p.read_bytes() in originals.values() for p in copies)
