"""A short real training run started from the training panel: the child process trains, the new model
version is saved under models/, selected, and the unlabelled images are segmented with it."""

import os
import signal

import pytest
from PySide6.QtCore import Qt

import engine
from app.window.main_window import MainWindow
from tests.app.gui_helpers import make_project, tiny_model_file


@pytest.fixture
def window(qtbot, tmp_path):
    folder = make_project(tmp_path / "project", n=5, size=(40, 48), labelled=3)
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    assert w.open_project(folder)
    return w


def test_training_from_the_panel_adds_and_selects_a_new_model_version(window, qtbot, tmp_path, monkeypatch):
    w = window
    first = tiny_model_file(w.project.folder / "models" / "start.safetensors")
    monkeypatch.chdir(tmp_path)  # a model named by a relative path (the child process runs elsewhere)
    with qtbot.waitSignal(w.models.changed, timeout=30000):
        w.open_model(first.relative_to(tmp_path))
    assert w.project.current_model == first.resolve() and w.models.active.path == first.resolve()
    panel = w.training_panel
    assert panel.finetune.isEnabled() and panel.finetune.isChecked()
    panel.iters.setValue(4)
    panel.crop.setValue(32)
    panel.batch.setValue(2)
    w.mark_reviewed()  # one reviewed image: too few to measure, so nothing is held out
    panel.device.setCurrentText("cpu")
    panel.precision.setCurrentText("fp32")
    with qtbot.waitSignal(w.trainingFinished, timeout=120000) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        assert panel.stop_button.isEnabled() and not panel.start_button.isEnabled()
    assert finished.args == [True], w.__dict__.get("last_warning")
    with qtbot.waitSignal(w.predictionsDone, timeout=60000):
        pass  # the unlabelled images are re-segmented with the new model
    new = w.models.active.path
    assert new != first and new.parent == w.project.folder / "models" and new.is_file()
    assert w.project.current_model == new.resolve()
    assert [m.path.name for m in w.project.models] == ["start.safetensors", new.name]
    version = w.project.models[-1]
    assert version.parent == "start.safetensors" and version.miou is None and version.val_images == 0
    assert panel.progress.value() == 4 and "not measurable yet" in panel.result.text()
    assert "not measurable yet" in w.model_panel.versions.item(1).text() and not panel.use_button.isVisible()
    assert "not measurable yet" in w.model_panel.details.text()  # the header: the same words for the same version
    assert w.project.run_validation_names() == []  # one reviewed image: none held out, all trained on
    assert engine.load_model(new).meta["history"][-1]["train_images"] == 3
    assert len(panel.loss_curve.getData()[0]) >= 1
    unlabelled = [e for e in w.project.images if e.status not in ("edited", "reviewed")]
    assert unlabelled and all(e.status == "predicted" for e in unlabelled)
    assert w.model_panel.versions.count() == 2


def test_a_killed_training_process_keeps_the_model_and_says_why(window, qtbot, tmp_path):
    w = window
    first = tiny_model_file(w.project.folder / "models" / "start.safetensors")
    with qtbot.waitSignal(w.models.changed, timeout=30000):
        w.open_model(first)
    panel = w.training_panel
    panel.iters.setValue(1000)
    panel.crop.setValue(32)
    panel.batch.setValue(2)

    def kill_on_start(event):
        if event.kind == "start":
            os.kill(w.training.process.pid(), signal.SIGKILL)

    with qtbot.waitSignal(w.trainingFinished, timeout=60000) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        w.training.process.event.connect(kill_on_start)
    assert finished.args == [False]
    assert "killed" in w.last_warning and "stays start" in w.last_warning
    assert w.models.active.path == first and len(w.project.models) == 1
    assert w.project.current_model == first.resolve()
    assert panel.start_button.isEnabled() and "failed" in panel.result.text()


def test_a_stopped_run_is_not_called_a_failure(window, qtbot):
    w = window
    panel = w.training_panel
    assert panel.crop.value() == 128  # as the README says
    panel.new.setChecked(True)
    panel.iters.setValue(1000)
    panel.crop.setValue(32)
    panel.batch.setValue(2)

    def stop_on_start(event):
        if event.kind == "start":
            w.training.stop()
            os.kill(w.training.process.pid(), signal.SIGKILL)  # gone before it could write a model

    with qtbot.waitSignal(w.trainingFinished, timeout=60000) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        w.training.process.event.connect(stop_on_start)
    assert finished.args == [False]
    assert panel.result.text() == "Training stopped" and w.last_warning is None
    assert "stopped" in w.statusBar().currentMessage()


@pytest.mark.parametrize("choice", ["Stop and keep the model so far", "Cancel the training"])
def test_quitting_during_training_asks_and_leaves_nothing_behind(window, qtbot, qtlog, choice, tmp_path,
                                                                  monkeypatch):
    import json
    import tempfile

    from PySide6.QtCore import QTimer

    w = window
    temp = tmp_path / "temp"  # the temporary folder of this process and of the training it starts
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    panel = w.training_panel
    panel.new.setChecked(True)
    panel.backbone.setCurrentText("test_resnet")  # a tiny model: the quitting is tested, not the backbone
    panel.weights.set_value(False)
    panel.options.setText("output_stride=8 channels=16 c1_channels=8 aux_channels=8")
    panel.iters.setValue(100000)
    panel.crop.setValue(32)
    panel.batch.setValue(2)
    panel.device.setCurrentText("cpu")
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.progress.value() >= 1, timeout=60000)  # it is training
    out = w.training._out

    def answer():
        box = w.quitting.question
        next(b for b in box.buttons() if b.text() == choice).click()

    def keep_working():
        next(b for b in w.quitting.question.buttons() if b.text() == "Keep working").click()

    QTimer.singleShot(100, keep_working)
    assert not w.close() and w.training.running  # asked, and the person went on working
    QTimer.singleShot(100, answer)
    assert w.close()
    assert w.training.process is None
    assert list(temp.iterdir()) == []
    models = sorted(p.name for p in (w.project.folder / "models").iterdir())
    recorded = [m["path"] for m in json.loads((w.project.folder / "segassist.json").read_text())["models"]]
    if choice.startswith("Stop"):
        assert out.name in models and not any(n.endswith(".ckpt") for n in models)
        assert any(r.endswith(out.name) for r in recorded)
    else:
        assert models == [] and recorded == []
    assert not [m for m in qtlog.records if "Destroyed while process" in m.message]
