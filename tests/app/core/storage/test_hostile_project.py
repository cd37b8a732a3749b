"""Hostile and damaged project folders: a bad image never makes the project unopenable, a broken
project file starts fresh keeping what could be read, class names are checked in linear time,
leftovers of interrupted writes are cleaned, and headers claiming huge sizes cost no memory."""

import json
import struct
import tracemalloc
import zlib

import numpy as np
import pytest

from app.core.storage.project import Project, ProjectFileError
from engine.classes import as_classes
from engine.images import ImageReadError, read_image, read_label, write_image, write_label


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` (its pixel data is one short IDAT)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def folder_with(tmp_path, n_good=2):
    folder = tmp_path / "project"
    folder.mkdir()
    for i in range(n_good):
        write_image(folder / f"good{i}.png", np.full((16, 20, 3), 50 * i, np.uint8))
    return folder


def test_one_bad_image_never_makes_the_project_unopenable(tmp_path, monkeypatch):
    folder = folder_with(tmp_path)
    (folder / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    (folder / "garbage.jpg").write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 3)
    (folder / "empty.tif").write_bytes(b"")
    project = Project.open(folder)
    errors = {e.name: e.error for e in project.images}
    assert errors["good0.png"] is None and errors["good1.png"] is None
    assert "over the limit" in errors["bomb.png"] and "SEGASSIST_MAX_PIXELS" in errors["bomb.png"]
    assert errors["garbage.jpg"] and errors["empty.tif"]
    with pytest.raises(ImageReadError, match="bomb.png"):
        read_image(folder / "bomb.png")
    monkeypatch.setenv("SEGASSIST_MAX_PIXELS", "100")  # the limit is configurable
    with pytest.raises(ImageReadError, match="over the limit of 100 pixels"):
        read_image(folder / "good0.png")


@pytest.mark.parametrize("exc", [MemoryError(), RuntimeError("decoder broke"), AttributeError("x")])
def test_any_failure_of_one_image_marks_it_unreadable(tmp_path, monkeypatch, exc):
    import app.core.storage.project as project_module

    folder = folder_with(tmp_path, 3)

    def size(path):
        if path.name == "good1.png":
            raise exc
        return (16, 20)

    monkeypatch.setattr(project_module, "image_size", size)
    project = Project.open(folder)
    assert [e.error is None for e in project.images] == [True, False, True]


def test_headers_claiming_huge_sizes_cost_no_memory_at_open(tmp_path):
    folder = folder_with(tmp_path, 1)
    for i in range(40):
        (folder / f"huge{i:02d}.png").write_bytes(png_claiming(60_000 + i, 60_000))
        (folder / f"big{i:02d}.png").write_bytes(png_claiming(30_000, 30_000))  # under the limit: header only
    tracemalloc.start()
    project = Project.open(folder)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50 * 2**20, peak
    assert sum(e.error is not None for e in project.images) == 40
    assert project.entry("big00.png").size == (30_000, 30_000)


def test_a_float_label_file_is_refused_not_truncated(tmp_path):
    from PIL import Image

    path = tmp_path / "x.png"
    Image.fromarray(np.array([[1.5, np.nan]], np.float32), mode="F").save(path, format="TIFF")
    with pytest.raises(ImageReadError, match="x.png.*integers"):
        read_label(path)


def test_a_broken_field_starts_fresh_keeping_the_broken_file_and_what_could_be_read(tmp_path):
    folder = folder_with(tmp_path)
    Project.open(folder, classes=["sky", "road"]).close()
    path = folder / "segassist.json"
    doc = json.loads(path.read_text())
    doc["images"]["good0.png"] = {"status": "bogus"}
    doc["images"]["good1.png"] = {"status": "reviewed"}
    write_label(folder / "labels" / "good1.png", np.zeros((16, 20), np.uint8))
    path.write_text(json.dumps(doc))
    with pytest.raises(ProjectFileError, match="bogus"):
        Project.open(folder)
    project = Project.open(folder, start_fresh=True)
    assert [c.name for c in project.classes] == ["sky", "road"]  # kept what could be read
    assert project.entry("good1.png").status == "reviewed" and project.entry("good0.png").status == "unlabelled"
    kept = list(folder.glob("segassist.json.broken-*"))
    assert len(kept) == 1 and "bogus" in kept[0].read_text()


def test_sixty_thousand_class_names_are_accepted_and_bad_ones_refused():
    """(`python -m bench.limits` times the check on 15k, 30k and 60k names: linear.)"""
    assert len(as_classes([f"c{i}" for i in range(60_000)])) == 60_000
    with pytest.raises(ValueError, match="at most 65536"):
        as_classes(f"c{i}" for i in range(100_000))
    with pytest.raises(ValueError, match="list of names"):
        as_classes("abc")
    with pytest.raises(ValueError, match="not valid text"):
        as_classes(["ok", "bad\udc80"])
    with pytest.raises(ValueError, match="repeated: a"):
        as_classes(["a", "b", "a"])


def test_leftovers_of_interrupted_writes_and_trainings_are_cleaned_and_said(tmp_path):
    folder = folder_with(tmp_path)
    Project.open(folder).close()
    (folder / "labels" / ".good0.png.abc123.tmp").write_bytes(b"half a png")
    models = folder / "models"
    (models / "deeplab-v2.safetensors.ckpt").mkdir(parents=True)
    (models / "deeplab-v2.safetensors.ckpt" / "last.pt").write_bytes(b"x")
    (models / "deeplab-v2.best.safetensors").write_bytes(b"a model")
    project = Project.open(folder)
    assert not list((folder / "labels").glob("*.tmp"))
    assert not (models / "deeplab-v2.safetensors.ckpt").exists()
    assert (models / "deeplab-v2-interrupted.safetensors").read_bytes() == b"a model"
    assert "unfinished label write" in project.note and "interrupted" in project.note
