"""A project's training run before and after (Qt-free): its inputs, its plan, its model recorded as a version."""

import os

import numpy as np

from app.core.loop.project_run import record_version, run_inputs
from app.core.loop.training_plan import TrainingChoice
from app.core.storage.project import Project
from engine.images import write_image
from training.events import DoneEvent

CHOICE = TrainingChoice(mode="finetune", arch="deeplabv3plus", backbone="test_resnet", crop=32, batch=2)


def labelled_project(tmp_path, n=6, reviewed=5) -> Project:
    """A project of `n` images; the first `reviewed` are labelled and marked reviewed, one more only edited."""
    folder = tmp_path / "p"
    folder.mkdir()
    for i in range(n):
        write_image(folder / f"img{i}.png", np.full((16, 16, 3), 30 * i, np.uint8))
    project = Project.open(folder, classes=["sky", "road"])
    for i, entry in enumerate(project.images[:reviewed + 1]):
        doc = project.load_document(entry)
        doc.paint((0, 0), np.ones((4, 4), bool), 1)
        project.save_document(entry, doc)
        if i < reviewed:
            project.set_status(entry, "reviewed")
    return project


def model_file(project: Project, name: str = "deeplabv3plus-v1"):
    from engine.model_file import save_model
    from tests.engine.tiny import tiny_model

    path = project.models_dir / f"{name}.safetensors"
    path.parent.mkdir(exist_ok=True)
    save_model(path, tiny_model("deeplabv3plus", 2), classes=["sky", "road"])
    return path


def test_a_new_models_inputs_are_the_labelled_images_and_the_validation_set(tmp_path):
    project = labelled_project(tmp_path)
    inputs = run_inputs(project)
    assert inputs.labelled == tuple(e.name for e in project.labelled()) and len(inputs.labelled) == 6
    assert inputs.val_names == tuple(project.loop.run_names(list(inputs.labelled))) and len(inputs.val_names) == 2
    assert set(inputs.val_names) <= {e.name for e in project.images[:5]}  # chosen among the reviewed images
    assert inputs.focus_names == () and inputs.init is None
    cfg = inputs.plan(CHOICE, out=project.next_model_path("deeplabv3plus"))  # no model yet: a new one
    assert cfg.init is None and cfg.arch == "deeplabv3plus" and cfg.val_names == inputs.val_names
    assert cfg.images == project.folder.resolve() and cfg.labels == project.labels_dir.resolve()


def test_a_finetunes_focus_is_the_labels_written_since_its_model(tmp_path):
    project = labelled_project(tmp_path)
    init = model_file(project)
    written = init.stat().st_mtime
    for i, entry in enumerate(project.images[:6]):  # the first four labelled before the model, two after
        t = written - 60 if i < 4 else written + 60
        os.utime(project.label_path(entry), (t, t))
    inputs = run_inputs(project, init)
    assert set(inputs.focus_names) == {"img4", "img5"} and inputs.init == init
    cfg = inputs.plan(CHOICE, out=project.next_model_path("deeplabv3plus"))
    assert cfg.init == init.resolve() and cfg.arch is None
    assert set(cfg.focus_names) == set(inputs.focus_names) - {n.rsplit(".", 1)[0] for n in inputs.val_names}


def done_event(path, parent_errors=None) -> DoneEvent:
    names = ["img0.png", "img1.png", "img2.png"]
    return DoneEvent(iteration=4, model_path=str(path), best_path=None, best_miou=None, last_miou=0.4,
                     wall_time_s=1.0, miou=0.4, parent_miou=None if parent_errors is None else 0.8, val_names=names,
                     image_errors={n: 0.5 for n in names},
                     parent_image_errors={n: e for n, e in zip(names, parent_errors or [], strict=False)})


def test_a_version_worse_than_its_parent_is_recorded_and_not_adopted(tmp_path):
    project = labelled_project(tmp_path)
    parent = model_file(project, "deeplabv3plus-v1")
    new = model_file(project, "deeplabv3plus-v2")
    verdict = record_version(project, done_event(new, parent_errors=[0.05, 0.04, 0.06]), parent=parent)
    assert not verdict.adopt and verdict.paired and verdict.images == 3
    again = Project.open(project.folder)
    version = next(m for m in again.models if m.path == new.resolve())
    assert (version.parent, version.miou, version.val_images) == ("deeplabv3plus-v1.safetensors", 0.4, 3)
    assert again.current_model is None  # recorded, never made current here


def test_without_a_parent_the_version_is_adopted(tmp_path):
    project = labelled_project(tmp_path)
    new = model_file(project)
    verdict = record_version(project, done_event(new), parent=None)
    assert verdict.adopt and verdict.miou == 0.4
    assert [m.path for m in project.models] == [new.resolve()] and project.models[0].parent is None


def test_a_version_that_cannot_be_recorded_still_gets_its_verdict(tmp_path, caplog):
    project = labelled_project(tmp_path)
    missing = project.models_dir / "gone.safetensors"  # its metadata cannot be read
    verdict = record_version(project, done_event(missing), parent=None)
    assert verdict.adopt and project.models == []
    assert "cannot record model version" in caplog.text and "gone.safetensors" in caplog.text
