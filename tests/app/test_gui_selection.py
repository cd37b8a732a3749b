"""Model selection in the app: the validation set, a fine-tune worse than its parent kept but not used,
one score per version, the correction record of a reviewed image, and the automatic fine-tune."""

import json

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

import engine
from app.core.loop.adoption import judge
from app.window.main_window import MainWindow
from tests.app.gui_helpers import make_project, tiny_model_file
from training import TrainConfig, train
from training.metrics import confusion_matrix, scores

TINY = {"output_stride": 8, "channels": 16, "c1_channels": 8, "aux_channels": 8}


def open_window(qtbot, folder):
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    assert w.open_project(folder)
    return w


def proposal_miou(model_file, folder, names) -> float:
    """mIoU of the proposals the app's model service makes with `model_file` (its default options, on the CPU)
    on the images `names`."""
    from app.core.storage.predictions import PROPOSAL_OPTIONS
    from app.services.model_service import make_predictor

    predictor = make_predictor(engine.load_model(model_file), {**PROPOSAL_OPTIONS, "device": "cpu"})
    k = predictor.num_classes
    confusion = torch.zeros(k, k, dtype=torch.int64)
    for name in names:
        labels = np.array(engine.read_label(folder / "labels" / name))
        predicted = predictor.predict(folder / name).labels.astype(np.int64)
        confusion += confusion_matrix(torch.from_numpy(predicted), torch.from_numpy(labels), k)
    return scores(confusion)["miou"]


def small_run(panel, lr: float | None = None) -> None:
    panel.iters.setValue(4)
    panel.crop.setValue(32)
    panel.batch.setValue(2)
    panel.device.setCurrentText("cpu")
    panel.precision.setCurrentText("fp32")
    if lr is not None:
        panel.lr.setMaximum(1000.0)  # a diverging rate, beyond what the panel offers
        panel.lr.setValue(lr)


def test_a_fine_tune_worse_than_its_parent_is_kept_but_not_used(qtbot, tmp_path):
    folder = make_project(tmp_path / "project", n=6, labelled=5)
    w = open_window(qtbot, folder)
    project = w.project
    for entry in project.labelled():
        project.set_status(entry, "reviewed")
    val = project.validation_names()
    assert len(val) == 2  # at least 2 (15 % of 5 is fewer)
    w.training.refresh_loop()
    assert "2 reviewed images" in w.training_panel.validation.text()
    marked = [w.images_panel.list.item(i).text() for i in range(6)]
    assert sorted(t.split()[0] for t in marked if "validation" in t) == val
    # the parent: trained well on the other images, scored on the validation images
    parent_path = folder / "models" / "parent.safetensors"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same (good) parent on every machine, far above a diverged child
    train(TrainConfig(images=folder, labels=folder / "labels", out=parent_path, classes=("background", "object"),
                      arch="deeplabv3plus", backbone="test_resnet", model_options=TINY, iterations=150, lr=0.05,
                      crop_size=32, batch_size=2, device="cpu", precision="fp32", val_names=tuple(val)))
    torch.set_num_threads(threads)
    with qtbot.waitSignal(w.models.changed, timeout=30000):
        w.open_model(parent_path)
    panel = w.training_panel
    small_run(panel, lr=200.0)
    done_events = []
    with qtbot.waitSignal(w.trainingFinished, timeout=120000) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        w.training.process.succeeded.connect(done_events.append)
    assert finished.args == [False], (done_events, w.training_panel.result.text())
    done = done_events[0]
    child = engine.load_model(done.model_path)
    assert done.val_names == val and child.meta["history"][-1]["train_images"] == 3
    # before and after: the same images, the inference the proposals use, in the same run
    assert done.parent_miou == pytest.approx(proposal_miou(parent_path, folder, val), abs=1e-9)
    assert done.miou == pytest.approx(proposal_miou(done.model_path, folder, val), abs=1e-9)
    assert done.miou < done.parent_miou
    # kept as a version, not made current; the panel says so plainly
    assert project.current_model == parent_path.resolve() and w.models.active.path == parent_path.resolve()
    version = project.models[-1]
    assert version.path.name == done.model_path.split("/")[-1] and (version.miou, version.val_images) == (
        done.miou, 2)
    text = panel.result.text()
    new = version.path.stem
    verdict = judge(done)
    assert verdict.paired and verdict.worse_on == 2  # the rule compared the 2 images one by one
    assert text.startswith(f"{new} is worse than parent on the same 2 images: mIoU {done.miou:.3f} against "
                           f"{done.parent_miou:.3f}; {100 * verdict.error:.1f} % of pixels wrong against "
                           f"{100 * verdict.parent_error:.1f} %, worse on 2 of 2 images"), text
    assert text.endswith("; parent stays"), text
    assert panel.use_button.isVisible()
    saved = json.loads((folder / "segassist.json").read_text())
    assert saved["current_model"] == "models/parent.safetensors" and saved["models"][-1]["miou"] == done.miou
    # one number per version: the list, and the header once it is used anyway
    assert f"mIoU {done.miou:.3f} on 2 images" in w.model_panel.versions.item(w.model_panel.versions.count() - 1).text()
    with qtbot.waitSignal(w.trainingFinished, timeout=60000) as used:
        qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    assert used.args == [True]
    assert project.current_model == version.path and w.models.active.path == version.path
    assert f"mIoU {done.miou:.3f} on 2 images" in w.model_panel.details.text()


def test_marking_reviewed_records_the_pixels_changed_in_the_proposal(qtbot, tmp_path):
    folder = make_project(tmp_path / "project", n=3, labelled=0)
    w = open_window(qtbot, folder)
    entry = w.project.images[0]
    h, w_ = entry.size
    proposal = np.zeros((h, w_), np.uint8)
    proposal[10:20, 10:30] = 1
    w.project.save_prediction(entry, proposal, model="deeplabv3plus-v2.safetensors")
    w.open_image(1)
    w.open_image(0)  # reloaded with its cached proposal
    doc = w.editor.doc
    assert w.editor.accept_proposal()
    w.editor._clock.last -= 30.0  # as if the person had worked on it for half a minute
    # the person paints a 5 x 6 block of background as object, away from the proposal's object: one region
    w.select_class(1)
    doc.paint((30, 40), np.ones((5, 6), bool), 1)
    doc.paint((12, 12), np.ones((2, 2), bool), 1)  # over pixels already "object": no change
    w.mark_reviewed()
    assert entry.status == "reviewed"
    saved = json.loads((folder / "segassist.json").read_text())
    record = saved["loop"]["corrections"][entry.name]
    assert record["model"] == "deeplabv3plus-v2.safetensors"
    assert record["wrong_px"] == 30 and record["regions"] == 1 and record["boundary_px"] == 2 * (5 + 6) - 4
    assert record["labelled_px"] == h * w_ and 30 <= record["seconds"] < 60
    # the Training panel plots it by version
    xs, ys = w.training_panel.correction_series["deeplabv3plus-v2"]
    assert xs == [1] and ys == [pytest.approx(100 * 30 / (h * w_))]
    # an image labelled without a proposal is recorded as labelled by hand
    w.open_image(1)
    w.editor.doc.paint((0, 0), np.ones((4, 4), bool), 1)
    w.mark_reviewed()
    record = json.loads((folder / "segassist.json").read_text())["loop"]["corrections"][w.project.images[1].name]
    assert record["model"] is None and record["wrong_px"] == 16 and record["labelled_px"] == 16


def test_the_person_adds_and_removes_validation_images_from_the_image_list(qtbot, tmp_path):
    folder = make_project(tmp_path / "project", n=4, labelled=3)
    w = open_window(qtbot, folder)
    menu = w.images_panel.menu_for(3)  # unlabelled: cannot be a validation image
    assert not menu.actions()[0].isEnabled()
    w.images_panel.menu_for(2).actions()[0].trigger()
    assert w.project.loop.validation == ["img02.png"] and "validation" in w.images_panel.list.item(2).text()
    w.images_panel.menu_for(2).actions()[0].trigger()  # and out again, for good
    assert w.project.loop.validation == [] and w.project.loop.excluded == ["img02.png"]
    assert "validation" not in w.images_panel.list.item(2).text()
    for entry in w.project.labelled():
        w.project.set_status(entry, "reviewed")
    assert "img02.png" not in w.project.validation_names()  # the hash rule does not bring it back
    saved = json.loads((folder / "segassist.json").read_text())["loop"]
    assert saved["excluded"] == ["img02.png"] and saved["validation"] == w.project.loop.validation


def test_automatic_fine_tune_starts_after_k_reviewed_images(qtbot, tmp_path):
    folder = make_project(tmp_path / "project", n=4, labelled=3)
    w = open_window(qtbot, folder)
    first = tiny_model_file(folder / "models" / "start.safetensors")
    with qtbot.waitSignal(w.models.changed, timeout=30000):
        w.open_model(first)
    panel = w.training_panel
    small_run(panel)
    assert not panel.auto.isChecked()  # off by default
    w.mark_reviewed()
    assert w.training.process is None
    panel.auto.setChecked(True)
    panel.auto_every.setValue(2)
    w.open_image(1)
    with qtbot.waitSignal(w.trainingFinished, timeout=120000) as finished:
        w.mark_reviewed()  # the second reviewed image since the model was written
        assert w.training.process is not None and w.training.process.config.init == first.resolve()
    assert finished.args == [True]
    assert w.project.current_model != first.resolve() and len(w.project.models) == 2
