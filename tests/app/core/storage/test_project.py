"""The project folder: segassist.json, image list with errors, atomic label saves, proposals, models."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from app.core.editing import tools
from app.core.storage.project import STATUSES, Project, ProjectFileError
from engine.classes import default_color
from engine.images import ImageReadError, read_label, write_image, write_label


def make_folder(tmp_path, n=3, size=(40, 50)):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(n):
        write_image(folder / f"img{i}.png", np.full((*size, 3), 40 * i, np.uint8))
    return folder


def snapshot_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != "segassist.json"}


def test_open_creates_the_project_and_never_touches_the_images(tmp_path):
    folder = make_folder(tmp_path)
    before = snapshot_files(folder)
    project = Project.open(folder, classes=["sky", "tree"])
    assert (folder / "segassist.json").is_file() and (folder / "labels").is_dir()
    assert [c.name for c in project.classes] == ["sky", "tree"]
    assert [e.name for e in project.images] == ["img0.png", "img1.png", "img2.png"]
    assert all(e.status == "unlabelled" and e.error is None and e.size == (40, 50) for e in project.images)
    entry = project.images[1]
    doc = project.load_document(entry)
    doc.paint((0, 0), np.ones((5, 5), bool), 1)
    project.save_document(entry, doc)
    project.save_prediction(project.images[2], np.zeros((40, 50), np.uint8))
    assert snapshot_files(folder) == before
    assert sorted(p.name for p in folder.iterdir()) == [
        ".segassist", "img0.png", "img1.png", "img2.png", "labels", "segassist.json"]


def test_unreadable_images_are_listed_with_the_reason_and_the_rest_work(tmp_path):
    folder = make_folder(tmp_path)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "empty.jpg").write_bytes(b"")
    good = folder / "img0.png"
    (folder / "truncated.png").write_bytes(good.read_bytes()[:60])
    project = Project.open(folder)
    errors = {e.name: e.error for e in project.images}
    assert "not a readable image" in errors["broken.png"]
    assert "empty" in errors["empty.jpg"]
    assert errors["img0.png"] is None
    truncated = project.entry("truncated.png")
    if truncated.error is None:  # its header reads fine: the failure shows when it is loaded
        with pytest.raises(ImageReadError, match="truncated.png"):
            project.load_document(truncated)
        assert truncated.error
    with pytest.raises(ImageReadError, match="broken.png"):
        project.load_document(project.entry("broken.png"))
    assert project.load_document(project.entry("img1.png")).shape == (40, 50)


def test_images_sharing_a_stem_the_first_owns_the_labels(tmp_path):
    folder = make_folder(tmp_path, n=1)
    write_image(folder / "img0.jpg", np.zeros((8, 8, 3), np.uint8))
    project = Project.open(folder)
    jpg, png = project.entry("img0.jpg"), project.entry("img0.png")
    assert jpg.error is None
    assert "same name stem as img0.jpg" in png.error and "rename" in png.error
    assert project.entry("img0") is jpg


def test_statuses_entropies_classes_and_settings_persist(tmp_path):
    folder = make_folder(tmp_path)
    project = Project.open(folder)
    a, b, c = project.images
    project.set_status(a, "reviewed")
    with pytest.raises(ValueError, match="unknown status"):
        project.set_status(a, "done")
    entropy = np.full((40, 50), 0.25, np.float32)
    project.save_prediction(b, np.ones((40, 50), np.uint8), np.full((40, 50), 0.9, np.float32), entropy)
    project.save_prediction(c, np.ones((40, 50), np.uint8), None, entropy * 2)
    project.add_class("water", (0, 0, 255))
    project.rename_class(1, "boat")
    project.recolor_class(0, (10, 20, 30))
    with pytest.raises(ValueError, match="unique"):
        project.add_class("water")
    project.settings["opacity"] = 0.4
    project.save()

    again = Project.open(folder)
    assert [(c.name, c.color) for c in again.classes] == [
        ("background", (10, 20, 30)), ("boat", default_color(1)), ("water", (0, 0, 255))]
    assert again.settings == {"opacity": 0.4}
    assert [e.status for e in again.images] == ["unlabelled", "predicted", "predicted"]  # no label file for a
    assert again.images[1].mean_entropy == pytest.approx(0.25)
    assert [e.name for e in again.most_uncertain()] == ["img2.png", "img1.png", "img0.png"]
    assert set(STATUSES) == {"unlabelled", "predicted", "edited", "reviewed"}


def test_label_files_on_disk_decide_between_labelled_and_not(tmp_path):
    folder = make_folder(tmp_path)
    write_label(folder / "labels" / "img2.png", np.zeros((40, 50), np.uint8))  # labels brought along
    project = Project.open(folder)
    assert project.entry("img2.png").status == "edited"
    assert project.labelled() == [project.entry("img2.png")]
    doc = project.load_document(project.entry("img2.png"))
    assert (doc.labels == 0).all() and not doc.dirty


def test_cached_proposal_comes_back_with_the_document(tmp_path):
    project = Project.open(make_folder(tmp_path))
    entry = project.images[0]
    labels = np.random.default_rng(0).integers(0, 2, (40, 50), dtype=np.uint8)
    confidence = np.random.default_rng(1).random((40, 50), dtype=np.float32)
    entropy = np.random.default_rng(2).random((40, 50), dtype=np.float32) * 0.69
    project.save_prediction(entry, labels, confidence, entropy, model="v1")
    doc = Project.open(project.folder).load_document(entry)
    np.testing.assert_array_equal(doc.proposal, labels)
    np.testing.assert_allclose(doc.confidence, confidence, atol=1 / 255)
    np.testing.assert_allclose(doc.entropy, entropy, atol=0.69 / 255)
    assert project.prediction_path(entry).parent != project.labels_dir
    project.prediction_path(entry).write_bytes(b"garbage")  # a broken cache is simply no proposal
    assert project.load_document(entry).proposal is None


def test_save_is_atomic_and_clears_the_journal(tmp_path):
    project = Project.open(make_folder(tmp_path))
    entry = project.images[0]
    doc = project.load_document(entry)
    doc.paint(*tools.polygon_mask(doc.shape, [(2, 2), (2, 30), (30, 2)]), 1)
    assert project.journal.pending()
    project.save_document(entry, doc)
    assert not doc.dirty and project.journal.pending() == {} and entry.status == "edited"
    np.testing.assert_array_equal(read_label(project.label_path(entry)), doc.labels)
    assert [p.name for p in project.labels_dir.iterdir()] == ["img0.png"]  # no temporary files left
    assert json.loads(project.project_file.read_text())["images"]["img0.png"]["status"] == "edited"


def test_background_save_keeps_edits_made_meanwhile_in_the_journal(tmp_path):
    project = Project.open(make_folder(tmp_path))
    entry = project.images[0]
    doc = project.load_document(entry)
    doc.paint((0, 0), np.ones((4, 4), bool), 1)
    pending = project.begin_save(entry, doc)
    doc.paint((10, 10), np.ones((4, 4), bool), 0)  # painted while the worker writes
    pending.write()
    project.finish_save(pending)
    assert doc.dirty
    assert len(project.journal.pending()[entry.stem]) == 1
    restored = Project.open(project.folder).load_document(entry)
    np.testing.assert_array_equal(restored.labels, doc.labels)


def painted(tmp_path):
    project = Project.open(make_folder(tmp_path))
    entry = project.images[0]
    doc = project.load_document(entry)
    doc.paint((0, 0), np.ones((6, 6), bool), 1)
    return project, entry, doc


def assert_failed_save_kept_everything(project, entry, doc):
    expected = doc.labels.copy()
    with pytest.raises(OSError):
        project.save_document(entry, doc)
    assert doc.dirty
    np.testing.assert_array_equal(doc.labels, expected)
    assert len(project.journal.pending()[entry.stem]) == 1
    assert entry.status == "unlabelled"


def test_a_failed_save_keeps_the_edits_and_the_journal(tmp_path):
    project, entry, doc = painted(tmp_path)
    project.label_path(entry).mkdir()  # something in the way that no write can replace
    assert_failed_save_kept_everything(project, entry, doc)
    project.label_path(entry).rmdir()
    project.save_document(entry, doc)
    assert not doc.dirty and project.journal.pending() == {}


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_labels_folder_fails_the_save_and_keeps_everything(tmp_path):
    project, entry, doc = painted(tmp_path)
    project.labels_dir.chmod(0o555)
    try:
        assert_failed_save_kept_everything(project, entry, doc)
    finally:
        project.labels_dir.chmod(0o755)
    project.save_document(entry, doc)
    assert not doc.dirty


def test_a_broken_project_file_names_itself_and_is_kept_when_starting_fresh(tmp_path):
    folder = make_folder(tmp_path)
    Project.open(folder)
    path = folder / "segassist.json"
    path.write_text('{"classes": [{"name": "a"}, ', encoding="utf-8")
    with pytest.raises(ProjectFileError, match=r"segassist\.json: not valid JSON.*line 1"):
        Project.open(folder)
    assert path.read_text() == '{"classes": [{"name": "a"}, '  # never overwritten behind the person's back
    project = Project.open(folder, start_fresh=True)
    backups = list(folder.glob("segassist.json.broken-*"))
    assert len(backups) == 1 and backups[0].read_text() == '{"classes": [{"name": "a"}, '
    assert [c.name for c in project.classes] == ["background", "object"]


@pytest.mark.parametrize("content, message", [
    ('{"classes": [{"name": "a"}, {"name": "a"}]}', "unique"),
    ('{"classes": [{"name": "a", "color": [1, 2]}]}', "colour"),
    ('{"images": {"img0.png": {"status": "finished"}}}', "unknown status 'finished'"),
    ('{"images": []}', "images"),
    ('{"version": 99}', "newer SegAssist"),
    ('[1, 2]', "expected a JSON object"),
    ('{"format": "something-else"}', "not a SegAssist project"),
])
def test_hand_edited_project_files_give_clear_errors(tmp_path, content, message):
    folder = make_folder(tmp_path, n=1)
    (folder / "segassist.json").write_text(content, encoding="utf-8")
    with pytest.raises(ProjectFileError, match=message) as info:
        Project.open(folder)
    assert str(folder / "segassist.json") in str(info.value)


def test_labels_that_do_not_fit_the_image_name_the_file(tmp_path):
    project = Project.open(make_folder(tmp_path))
    write_label(project.label_path(project.images[0]), np.zeros((10, 10), np.uint8))
    with pytest.raises(ImageReadError, match=r"labels/img0\.png: labels of 10x10"):
        project.load_document(project.images[0])


def test_model_versions_from_model_files(tmp_path):
    from engine.model_file import save_model
    from tests.engine.tiny import tiny_model

    project = Project.open(make_folder(tmp_path))
    path = project.next_model_path("deeplabv3plus")
    assert path == project.models_dir / "deeplabv3plus-v1.safetensors"
    save_model(path, tiny_model("deeplabv3plus", 2), classes=["background", "object"])
    v1 = project.add_model_version(path, miou=0.5)
    assert (v1.arch, v1.backbone, v1.miou) == ("deeplabv3plus", "test_resnet", 0.5)
    assert project.next_model_path("deeplabv3plus").name == "deeplabv3plus-v2.safetensors"
    v2 = project.add_model_version(project.models_dir / "x.safetensors", arch="ccnet", backbone="resnet18",
                                   parent=v1.name, select=False)
    again = Project.open(project.folder)
    assert [m.name for m in again.models] == ["deeplabv3plus-v1", "x"]
    assert again.current_model == path and again.models[1].parent == "deeplabv3plus-v1"
    assert json.loads(again.project_file.read_text())["models"][0]["path"] == "models/deeplabv3plus-v1.safetensors"
    assert v2.created
