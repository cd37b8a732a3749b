"""Generated bad inputs for the newer surfaces (deterministic, made at test time): COCO and labelme files,
lock files, SAM embedding and proposal cache files, and exports failing at every write. Each input
either works or gives the documented error naming the file; none hangs, crashes, writes half or is
accepted as garbage."""

from __future__ import annotations

import copy
import errno
import json
import os
import socket

import numpy as np
import pytest

from app.core.storage.label_transfer import export_project, plan_import, run_import
from app.core.storage.predictions import PredictionFileError, read_prediction
from app.core.storage.project import Project
from app.core.storage.project_lock import LOCK_NAME, ProjectLockedError
from engine.images import read_label, write_image
from engine.sam import Embedding, EmbeddingCache
from labelformats import EXPORT_FORMATS, FormatError, open_source
from tests.hang_guard import hang_guard
from tests.labelformats.conftest import CLASSES
from tests.test_fuzz_inputs import mutations

SEED = 24
JUNK = [None, True, -1, 0, 2**40, 1e308, float("nan"), float("inf"), "", "x", "\udc80", [], {}, [[]], [1, 2],
        [1e308, -1, "x"], {"a": 1}]


@pytest.fixture
def projects(tmp_path):
    """A labelled source project exported as COCO and labelme, and an empty target of the same images."""
    from tests.labelformats.conftest import H, W, label_map

    folders = {}
    for name in ("src", "dst"):
        folder = tmp_path / name
        folder.mkdir()
        rng = np.random.default_rng(0)
        for i in range(2):
            write_image(folder / f"img_{i}.png", rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
        folders[name] = folder
    src = Project.open(folders["src"], CLASSES)
    from engine.images import write_label

    for i in range(2):
        write_label(src.label_path(src.entry(f"img_{i}")), label_map(i), src.classes)
    src = Project.open(folders["src"])
    export_project(src, "coco", tmp_path / "coco")
    export_project(src, "coco", tmp_path / "coco-poly", polygons=True)
    export_project(src, "labelme", tmp_path / "labelme")
    src.close()
    return folders, tmp_path


def _fields(doc: dict):
    """(path, parent, key) of every scalar or list field of a COCO document's first entries."""
    for part in ("categories", "images", "annotations"):
        entry = doc[part][0]
        for key in list(entry):
            yield part, key
    yield "annotations", ("segmentation", "counts")
    yield "annotations", ("segmentation", "size")


def _set(doc, part, key, value):
    entry = doc[part][0]
    if isinstance(key, tuple):
        if isinstance(entry.get(key[0]), dict):
            entry[key[0]][key[1]] = value
    else:
        entry[key] = value


def _import_or_refuse(target: Project, fmt: str, path, n: int) -> None:
    before = {p: p.read_bytes() for p in target.folder.rglob("*") if p.is_file()}
    try:
        with hang_guard(20):
            plan = plan_import(target, open_source(fmt, path), unknown="add")
    except FormatError as exc:
        assert str(path) in str(exc) or str(path.parent) in str(exc), f"case {n}: {exc}"
        after = {p: p.read_bytes() for p in target.folder.rglob("*") if p.is_file()}
        assert after == before, f"case {n}: a refused import wrote something"
        return
    run_import(target, plan)
    reopened = Project.open(target.folder)
    for e in reopened.images:
        if reopened.label_path(e).exists():
            labels = read_label(reopened.label_path(e), len(reopened.classes))
            assert labels.shape == e.size


def test_fuzzed_coco_files_import_or_name_the_file(projects):
    folders, tmp = projects
    rng = np.random.default_rng(SEED)
    n = 0
    for src in ("coco", "coco-poly"):
        path = tmp / src / "annotations" / "instances_train.json"
        base = json.loads(path.read_text())
        cases = []
        for part, key in _fields(base):
            for value in JUNK:
                doc = copy.deepcopy(base)
                _set(doc, part, key, value)
                cases.append(json.dumps(doc))
        for bad in mutations(path.read_bytes(), rng, 40):
            cases.append(bad.decode("utf-8", "replace"))
        for text in cases:
            bad_path = tmp / "fuzz" / f"c{n}.json"
            bad_path.parent.mkdir(exist_ok=True)
            bad_path.write_text(text, encoding="utf-8", errors="surrogateescape")
            target = Project.open(folders["dst"])
            _import_or_refuse(target, "coco", bad_path, n)
            target.close()
            for p in (folders["dst"] / "labels").glob("*.png"):
                p.unlink()
            n += 1
    assert n > 300


def test_fuzzed_labelme_files_import_or_name_the_file(projects):
    folders, tmp = projects
    rng = np.random.default_rng(SEED + 1)
    base_path = tmp / "labelme" / "img_0.json"
    base = json.loads(base_path.read_text())
    cases = []
    for key in ("imageHeight", "imageWidth", "imagePath", "shapes"):
        for value in JUNK:
            cases.append(json.dumps({**base, key: value}))
    for key in ("label", "points", "shape_type", "mask"):
        for value in JUNK:
            doc = copy.deepcopy(base)
            doc["shapes"][0][key] = value
            cases.append(json.dumps(doc))
    cases += [bad.decode("utf-8", "replace") for bad in mutations(base_path.read_bytes(), rng, 40)]
    for n, text in enumerate(cases):
        folder = tmp / "fuzz-lm" / str(n)
        folder.mkdir(parents=True)
        (folder / "img_0.json").write_text(text, encoding="utf-8", errors="surrogateescape")
        target = Project.open(folders["dst"])
        _import_or_refuse(target, "labelme", folder, n)
        target.close()
        for p in (folders["dst"] / "labels").glob("*.png"):
            p.unlink()
    assert len(cases) > 100


def test_fuzzed_lock_files_never_make_the_folder_unopenable(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    write_image(folder / "a.png", np.zeros((4, 4, 3), np.uint8))
    lock = folder / ".segassist" / LOCK_NAME
    lock.parent.mkdir()
    good = {"holder": "ann", "pid": 2**22 + 5, "host": socket.gethostname(), "created": "2026", "instance": "x"}
    rng = np.random.default_rng(SEED + 2)
    cases = [json.dumps({**good, key: value}).encode("utf-8", "surrogatepass")
             for key in good for value in JUNK]
    cases += list(mutations(json.dumps(good).encode(), rng, 60))
    for n, data in enumerate(cases):
        lock.write_bytes(data)
        with hang_guard(20):
            try:
                project = Project.open(folder)
            except ProjectLockedError as exc:  # a lock that reads as a live holder elsewhere: named, offered
                assert exc.info.describe() in str(exc), n
                Project.open(folder, take_over=exc.info).close()
            else:
                project.close()
        assert not lock.exists(), f"case {n}: the lock was not given back"


def test_fuzzed_embedding_cache_files_are_exact_or_dropped(tmp_path):
    rng = np.random.default_rng(SEED + 3)
    emb = Embedding(rng.standard_normal((8, 4, 4)).astype(np.float16),
                    (rng.standard_normal((4, 16, 16)).astype(np.float16),), (30, 40))
    cache = EmbeddingCache(tmp_path)
    data = cache.put("m", "i", emb).read_bytes()
    for n, bad in enumerate(mutations(data, rng, 120)):
        cache.path("m", "i").write_bytes(bad)
        got = cache.get("m", "i")
        if got is not None:  # only an entry still exactly as written may be used
            np.testing.assert_array_equal(got.image_embed, emb.image_embed, err_msg=f"case {n}")
            np.testing.assert_array_equal(got.high_res[0], emb.high_res[0], err_msg=f"case {n}")
            assert got.image_hw == emb.image_hw
        else:
            assert not cache.path("m", "i").exists()


def test_fuzzed_cached_proposals_never_make_an_image_unopenable(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    write_image(folder / "a.png", np.full((24, 32, 3), 70, np.uint8))
    project = Project.open(folder, ["x", "y"])
    entry = project.entry("a.png")
    project.save_prediction(entry, (np.arange(24 * 32).reshape(24, 32) % 2).astype(np.uint8),
                            np.full((24, 32), 0.5, np.float32), np.full((24, 32), 0.3, np.float32), model="m")
    path = project.prediction_path(entry)
    data = path.read_bytes()
    rng = np.random.default_rng(SEED + 4)
    for n, bad in enumerate(mutations(data, rng, 120)):
        path.write_bytes(bad)
        try:
            got = read_prediction(path, (24, 32))
            assert got.labels.shape == (24, 32) and got.labels.dtype == np.uint8, n
        except PredictionFileError as exc:
            assert str(path) in str(exc), n
        doc = project.load_document(entry)
        assert doc.shape == (24, 32)


@pytest.mark.parametrize("fmt", list(EXPORT_FORMATS))
def test_an_export_failing_at_any_write_leaves_the_destination_as_it_was(projects, monkeypatch, fmt):
    folders, tmp = projects
    project = Project.open(folders["src"])
    out = tmp / f"again-{fmt}"
    export_project(project, fmt, out)
    earlier = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real = os.replace
    calls = {"n": 0, "fail": 0}

    def replace(src, dst, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == calls["fail"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    export_project(project, fmt, tmp / f"count-{fmt}")
    total = calls["n"]
    for k in range(1, total + 1):
        calls.update(n=0, fail=k)
        with pytest.raises(OSError):
            export_project(project, fmt, out, which="all")
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == earlier, f"failure at write {k}"
    project.close()
