"""Hostile label files: every field checked before anything is written, memory bounded, FIFOs refused,
duplicates refused, and an import killed half-way can still be undone as a whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from app.core.storage import label_transfer
from app.core.storage.label_transfer import export_project, plan_import, run_import, undo_import
from app.core.storage.project import Project
from engine.images import read_label, write_label
from labelformats import FormatError, open_source
from tests.hang_guard import hang_guard as deadline

ROOT = Path(__file__).resolve().parents[2]


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def coco_file(make_project, tmp_path, edit=None) -> Path:
    """A COCO export of a labelled project, `edit(doc)` applied to its JSON."""
    src, _ = make_project("src")
    export_project(src, "coco", tmp_path / "coco")
    path = tmp_path / "coco" / "annotations" / "instances_train.json"
    if edit is not None:
        doc = json.loads(path.read_text())
        edit(doc)
        path.write_text(json.dumps(doc))
    return path


def expect_refused(project, fmt, path, match, **kwargs):
    """Opening, checking and importing `path` raises FormatError matching `match`; nothing is written."""
    before = snapshot(project.folder)
    with pytest.raises(FormatError, match=match):
        run_import(project, plan_import(project, open_source(fmt, path), **kwargs))
    assert snapshot(project.folder) == before


@pytest.mark.parametrize("color, match", [([1, 2], "colour must be three integers"),
                                          ([1e308, -1, "x"], "colour must be three integers"),
                                          ([True, 0, 0], "colour must be three integers"),
                                          ([300, 0, 0], "colour must be three integers")])
def test_a_bad_category_colour_is_refused_before_anything_is_written(make_project, tmp_path, color, match):
    def edit(doc):
        doc["categories"][1]["name"] = "new thing"
        doc["categories"][1]["color"] = color

    path = coco_file(make_project, tmp_path, edit)
    project, _ = make_project("dst", labelled=False)
    expect_refused(project, "coco", path, match, unknown="add")
    Project.open(project.folder)  # and the project still opens


@pytest.mark.parametrize("name", ["", "   ", "\udc80x", "a\x00b", "x" * 300])
def test_bad_class_names_are_refused_before_anything_is_written(make_project, tmp_path, name):
    def edit(doc):
        doc["categories"][1]["name"] = name

    path = coco_file(make_project, tmp_path, edit)
    project, _ = make_project("dst", labelled=False)
    expect_refused(project, "coco", path, "class name", unknown="add")
    Project.open(project.folder)


def test_a_class_colour_the_project_cannot_keep_is_refused_by_the_project_too(make_project):
    project, _ = make_project("p", labelled=False)
    with pytest.raises(ValueError, match="colour must be three integers"):
        project.add_class("odd", (1e308, -1, 3))
    assert [c.name for c in Project.open(project.folder).classes] == [c.name for c in project.classes]


def test_a_broken_class_list_is_salvaged_class_by_class(make_project):
    project, maps = make_project("p")
    path = project.folder / "segassist.json"
    doc = json.loads(path.read_text())
    doc["classes"][2]["color"] = [1, 2]             # one broken colour
    doc["classes"][3] = {"name": "", "color": [1, 2, 3]}  # one broken name
    path.write_text(json.dumps(doc))
    fresh = Project.open(project.folder, start_fresh=True)
    names = [c.name for c in fresh.classes]
    assert len(names) == 5 and names[:3] == ["background", "road", "car"] and names[4] == "sky"
    assert fresh.classes[1].color == project.classes[1].color
    for stem, labels in maps.items():  # every labelled image still opens with its labels
        doc = fresh.load_document(fresh.entry(stem))
        np.testing.assert_array_equal(doc.labels, labels)


def _two_files_for_one_image(fmt, tmp_path, make_project):
    src, maps = make_project("src")
    out = tmp_path / "two"
    if fmt == "index":
        export_project(src, "index", out)
        Image.fromarray(maps["img_0"]).save(out / "masks" / "img_0.tif")
        return out
    if fmt == "labelme":
        export_project(src, "labelme", out)
        doc = json.loads((out / "img_0.json").read_text())
        (out / "sub").mkdir()
        (out / "sub" / "other.json").write_text(json.dumps(doc))  # another file naming the same image
        return out
    raise ValueError(fmt)


@pytest.mark.parametrize("fmt", ["index", "labelme", "coco"])
def test_two_files_for_one_image_are_refused_naming_both(make_project, tmp_path, fmt):
    if fmt == "coco":
        path = coco_file(make_project, tmp_path)
        doc = json.loads(path.read_text())
        first = doc["images"][0]
        doc["images"].append({**first, "id": 99, "file_name": Path(first["file_name"]).stem + ".jpg"})
        doc["annotations"].append({**doc["annotations"][0], "id": 10_000, "image_id": 99})
        path.write_text(json.dumps(doc))
    else:
        path = _two_files_for_one_image(fmt, tmp_path, make_project)
    project, _ = make_project("dst")
    reviewed = read_label(project.label_path(project.entry("img_0")))
    expect_refused(project, fmt, path, r"both hold labels for the image img_0\.png")
    np.testing.assert_array_equal(read_label(project.label_path(project.entry("img_0"))), reviewed)


def test_an_import_killed_between_images_is_undone_as_a_whole(make_project, tmp_path, monkeypatch):
    src, maps = make_project("src")
    export_project(src, "palette", tmp_path / "out")
    source = open_source("palette", tmp_path / "out", classes_file=tmp_path / "out" / "classes.json")
    project, _ = make_project("dst", labelled=False)
    before = {e.stem: np.full((48, 64), 255, np.uint8) for e in project.images}
    before["img_1"][:5, :5] = 3
    write_label(project.label_path(project.entry("img_1")), before["img_1"], project.classes)
    project = Project.open(project.folder)
    real = label_transfer.atomic_write_bytes
    calls = {"n": 0}

    def killed_at_the_second(path, data):  # the process dies while writing the second image's undo record
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real(path, data)

    monkeypatch.setattr(label_transfer, "atomic_write_bytes", killed_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        run_import(project, plan_import(project, source))
    monkeypatch.undo()
    record = next((project.folder / ".segassist" / "imports").iterdir())
    (record / ".img_1.undo.x1.tmp").write_bytes(b"half an undo record")  # what a kill during the write leaves
    reopened = Project.open(project.folder)
    for entry in reopened.pending_recovery():  # the journal brings back what was imported
        reopened.save_document(entry, reopened.load_document(entry))
    undo_import(reopened, record)
    final = Project.open(project.folder)
    for stem, labels in before.items():
        doc = final.load_document(final.entry(stem))
        np.testing.assert_array_equal(doc.labels, labels, err_msg=stem)
    assert not record.exists()


def test_an_all_void_image_is_not_counted_as_imported(make_project, tmp_path):
    src, maps = make_project("src")
    write_label(src.label_path(src.entry("img_2")), np.full((48, 64), 255, np.uint8), src.classes)
    src.set_status(src.entry("img_2"), "reviewed")
    export_project(src, "coco", tmp_path / "coco", which="labelled")
    project, _ = make_project("dst", labelled=False)
    result = run_import(project, plan_import(project, open_source(
        "coco", tmp_path / "coco" / "annotations" / "instances_train.json")))
    assert result.images == 2 and result.empty == ["img_2.png"]
    assert "imported the labels of 2 images; 1 image had no labels in the source" in result.summary()
    again = run_import(project, plan_import(project, open_source(
        "coco", tmp_path / "coco" / "annotations" / "instances_train.json")))
    assert again.images == 0 and again.unchanged == ["img_0.png", "img_1.png"]


NAN_IMPORT = """
import json, sys
from app.core.storage.label_transfer import plan_import
from app.core.storage.project import Project
from labelformats import FormatError, open_source
try:
    plan_import(Project.open(sys.argv[1], read_only=True), open_source("coco", sys.argv[2]))
except FormatError as exc:
    print("refused:", exc)
"""


def test_a_nan_in_a_polygon_is_refused_not_a_crash(make_project, tmp_path):
    def edit(doc):
        ann = doc["annotations"][0]
        ann["segmentation"] = [[1.0, 1.0, float("nan"), 5.0, 9.0, 9.0]]

    path = coco_file(make_project, tmp_path, edit)
    project, _ = make_project("dst", labelled=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", NAN_IMPORT, str(project.folder), str(path)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "refused:" in run.stdout and "finite numbers" in run.stdout and str(path) in run.stdout


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["annotations"][0]["segmentation"].update(
        counts=mask_utils.encode(np.asfortranarray(np.ones((24, 64), np.uint8)))["counts"].decode()),
     "run lengths cover 1536 pixels"),
    (lambda d: d["annotations"][0]["segmentation"].update(counts=[10, -5, 3067]), "negative run"),
    (lambda d: d["annotations"][0]["segmentation"].update(counts="\x7f\x7f"), "RLE alphabet"),
    (lambda d: d["categories"][0].update(id=-1), "integer 'id'"),
    (lambda d: d["annotations"][0].update(segmentation=[[float("nan")] * 6]), "finite numbers"),
    (lambda d: d["annotations"][0].update(segmentation="a string"), "list of polygons or an RLE"),
    (lambda d: d["annotations"][0].update(iscrowd=7), "iscrowd"),
    (lambda d: d["annotations"][1].update(id=d["annotations"][0]["id"]), "is used twice"),
    (lambda d: [a.pop("id") for a in d["annotations"]], "integer 'id'"),
    (lambda d: d["images"][0].update(height=10**6, width=10**6), "over the limit"),
    (lambda d: d["categories"].append(dict(d["categories"][0])), "listed twice"),
])
def test_every_coco_number_and_id_is_checked(make_project, tmp_path, edit, match):
    path = coco_file(make_project, tmp_path, edit)
    project, _ = make_project("dst", labelled=False)
    expect_refused(project, "coco", path, f"{path}.*{match}|{match}.*{path}")


def test_a_huge_category_id_imports_without_a_table_that_long(make_project, tmp_path):
    def edit(doc):
        for c in doc["categories"]:
            c["id"] += 2**31 - 100
        for a in doc["annotations"]:
            a["category_id"] += 2**31 - 100

    path = coco_file(make_project, tmp_path, edit)
    project, maps = make_project("dst", labelled=False)
    tracemalloc.start()
    try:
        run_import(project, plan_import(project, open_source("coco", path)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 << 20
    got = read_label(project.label_path(project.entry("img_0")))
    np.testing.assert_array_equal(got, maps["img_0"])


def test_coco_annotations_are_decoded_one_at_a_time(make_project, tmp_path):
    """Many full-size annotations on one image: memory is that of one mask, not of all of them."""
    h, w = 480, 640
    masks = []
    for i in range(120):
        m = np.zeros((h, w), np.uint8, order="F")
        m[: h - i, : w - i] = 1
        rle = mask_utils.encode(m)
        rle["counts"] = rle["counts"].decode()
        masks.append({"id": i + 1, "image_id": 1, "category_id": 1 + i % 2, "segmentation": rle, "iscrowd": 0})
    doc = {"images": [{"id": 1, "file_name": "big.png", "height": h, "width": w}], "annotations": masks,
           "categories": [{"id": 1, "name": "road"}, {"id": 2, "name": "car"}]}
    path = tmp_path / "many.json"
    path.write_text(json.dumps(doc))
    source = open_source("coco", path)
    tracemalloc.start()
    try:
        ids = source.read(source.items()[0], (h, w))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30 << 20, f"{peak / 2**20:.0f} MiB for 120 annotations of {w}x{h}"
    assert ids[0, 0] == 2 and ids[h - 1, w - 1] == 1  # the smallest lies on top


def test_masks_over_the_pixel_limit_are_refused_from_the_header(make_project, tmp_path, monkeypatch):
    src, _ = make_project("src")
    export_project(src, "index", tmp_path / "index")
    export_project(src, "labelme", tmp_path / "labelme")
    project, _ = make_project("dst", labelled=False)
    monkeypatch.setenv("SEGASSIST_MAX_PIXELS", "1000")  # the masks are 64 x 48 = 3072 pixels
    with pytest.raises(FormatError, match="over the limit of 1,000 pixels"):
        plan_import(project, open_source("index", tmp_path / "index"))
    with pytest.raises(FormatError, match="over the limit of 1,000 pixels"):
        plan_import(project, open_source("labelme", tmp_path / "labelme"))


def test_a_labelme_mask_larger_than_its_box_is_refused(make_project, tmp_path):
    import base64
    import io

    buf = io.BytesIO()
    Image.fromarray(np.zeros((300, 400), np.uint8)).save(buf, format="PNG")
    shape = {"label": "road", "points": [[1, 1], [10, 10]], "shape_type": "mask",
             "mask": base64.b64encode(buf.getvalue()).decode()}
    folder = tmp_path / "lm"
    folder.mkdir()
    (folder / "img_0.json").write_text(json.dumps({"shapes": [shape], "imagePath": "img_0.png",
                                                   "imageHeight": 48, "imageWidth": 64}))
    project, _ = make_project("dst", labelled=False)
    expect_refused(project, "labelme", folder, "a 400x300 mask for a box of 10x10")


@pytest.mark.parametrize("fmt", ["labelme", "coco", "classes"])
def test_fifos_and_devices_are_refused_without_blocking(make_project, tmp_path, fmt):
    project, _ = make_project("dst", labelled=False)
    folder = tmp_path / "src"
    folder.mkdir()
    target = folder / ("img_0.json" if fmt != "classes" else "classes.json")
    os.mkfifo(target)
    with deadline(20):
        with pytest.raises(FormatError, match="FIFO, not a regular file"):
            if fmt == "labelme":
                plan_import(project, open_source("labelme", folder))
            elif fmt == "coco":
                open_source("coco", target)
            else:
                open_source("index", folder, classes_file=target)
        target.unlink()
        target.symlink_to("/dev/zero")
        with pytest.raises(FormatError, match="character device"):
            if fmt == "labelme":
                plan_import(project, open_source("labelme", folder))
            elif fmt == "coco":
                open_source("coco", target)
            else:
                open_source("index", folder, classes_file=target)


def test_a_mask_that_is_a_huge_sparse_file_is_refused_by_its_size(make_project, tmp_path, monkeypatch):
    folder = tmp_path / "masks"
    folder.mkdir()
    with open(folder / "img_0.png", "wb") as f:
        f.truncate(50 << 20)  # sparse: takes no disk
    monkeypatch.setenv("SEGASSIST_MAX_FILE_BYTES", str(10 << 20))
    project, _ = make_project("dst", labelled=False)
    with pytest.raises(FormatError, match="over the limit"):
        plan_import(project, open_source("index", folder))


def test_int32_masks_with_values_beyond_class_ids_are_refused(make_project, tmp_path):
    folder = tmp_path / "tiff"
    folder.mkdir()
    arr = np.zeros((48, 64), np.int32)
    arr[0, 0] = -3
    Image.fromarray(arr).save(folder / "img_0.tif")
    project, _ = make_project("dst", labelled=False)
    expect_refused(project, "index", folder, r"mask values -3\.\.0")
    arr[0, 0] = 2**31 - 1
    Image.fromarray(arr).save(folder / "img_0.tif")
    expect_refused(project, "index", folder, "mask values 0..2147483647")
