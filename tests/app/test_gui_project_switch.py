"""One project, one model: a training belongs to the project that started it, whatever the window shows
later, and opening a folder shows that project's model (or none), versions and settings only.

Two projects on disk: "sample" (the default classes) and "street" (other classes). The training child is
a stand-in (`fake_training.py gated`) that steps until the test opens its gate, then writes a real tiny
model with the project's classes.
"""

import json
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer

from app.core.storage.project import Project
from app.window.main_window import MainWindow
from tests.app.gui_helpers import make_project, tiny_model_file

FAKE = [sys.executable, str(Path(__file__).with_name("fake_training.py")), "gated"]


@pytest.fixture
def folders(tmp_path):
    sample = make_project(tmp_path / "sample", n=4, labelled=3)
    street = make_project(tmp_path / "street", n=3, labelled=1)
    Project.open(street, ["sky", "road", "car", "person"]).close()
    return sample, street


@pytest.fixture
def window(qtbot, folders):
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    w.training.program = FAKE
    assert w.open_project(folders[0])
    return w


def project_file(folder: Path) -> dict:
    return json.loads((folder / "segassist.json").read_text())


def answer_later(w, text: str) -> None:
    """Click `text` in the question the window is about to ask (modal: answered from the event loop)."""
    def click():
        box = w.quitting.question
        assert box is not None, "no question was asked"
        next(b for b in box.buttons() if b.text().replace("&", "") == text).click()

    QTimer.singleShot(100, click)


def start_training(qtbot, w) -> Path:
    panel = w.training_panel
    panel.new.setChecked(True)
    panel.iters.setValue(1000)
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.progress.value() >= 1, timeout=60000)  # it is training
    return w.training._out


def open_gate(out: Path) -> None:
    out.with_name(out.name + ".go").touch()


def test_a_run_kept_running_is_recorded_in_its_own_project_and_said_there_next_time(window, qtbot, folders):
    w, (sample, street) = window, folders
    panel = w.training_panel
    out = start_training(qtbot, w)
    assert out.parent == sample / "models"

    answer_later(w, "Keep it running")
    assert w.open_project(street)
    assert w.project.folder == street and w.training.running
    # The street project's panel: its own state, and where the run belongs; neither button acts on it.
    assert not panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    assert "training of sample is running" in panel.status.text() and "recorded there" in panel.status.text()
    assert len(panel.loss_curve.getData()[0] or []) == 0 and not panel.result.isVisible()
    assert w.models.active is None and w.status_model.text() == "no model"
    steps = panel.status.text()
    qtbot.waitUntil(lambda: panel.status.text() != steps, timeout=30000)  # it says how far the run is

    with qtbot.waitSignal(w.trainingFinished, timeout=60000) as finished:
        open_gate(out)
    assert finished.args == [False]  # nothing was loaded here
    assert "sample ended" in w.statusBar().currentMessage() and out.stem in w.statusBar().currentMessage()
    mine, theirs = project_file(sample), project_file(street)
    assert [m["path"] for m in mine["models"]] == [f"models/{out.name}"] and mine["current_model"] is None
    assert out.stem in mine["notices"][0] and "not in use" in mine["notices"][0]
    assert theirs["models"] == [] and theirs["current_model"] is None and "notices" not in theirs
    assert w.models.active is None and w.model_panel.versions.count() == 0
    assert panel.start_button.isEnabled() and "Ready" in panel.status.text()
    assert not (sample / ".segassist" / "lock").exists()  # the sample project was kept open for the run alone

    assert w.open_project(sample)  # next time: said, and the version is listed but not current
    assert out.stem in w.last_notice and "not in use" in w.last_notice
    assert w.model_panel.versions.count() == 1 and w.project.current_model is None
    w.project_saver.flush()  # (bookkeeping is written a moment later)
    assert w.models.active is None and "notices" not in project_file(sample)


def test_stop_and_keep_records_the_model_so_far_before_the_other_folder_opens(window, qtbot, folders):
    w, (sample, street) = window, folders
    out = start_training(qtbot, w)
    answer_later(w, "Stop and keep the model so far")
    assert w.open_project(street)
    assert not w.training.running and out.is_file()
    mine = project_file(sample)
    assert [m["path"] for m in mine["models"]] == [f"models/{out.name}"] and mine["current_model"] is None
    assert "stopped early" in mine["notices"][0]
    assert project_file(street)["models"] == []
    assert w.training_panel.start_button.isEnabled()


def test_cancel_keeps_the_project_and_its_run_on_screen(window, qtbot, folders):
    w, (sample, street) = window, folders
    panel = w.training_panel
    out = start_training(qtbot, w)
    answer_later(w, "Cancel")
    assert not w.open_project(street)
    assert w.project.folder == sample and w.training.running and w.training.shown
    assert panel.stop_button.isEnabled() and not panel.start_button.isEnabled()
    with qtbot.waitSignal(w.trainingFinished, timeout=60000) as finished:
        open_gate(out)
    assert finished.args == [True]  # shown where it started: adopted as usual
    assert w.project.current_model == out.resolve()


def test_coming_back_to_the_training_project_follows_the_run_again(window, qtbot, folders):
    w, (sample, street) = window, folders
    panel = w.training_panel
    out = start_training(qtbot, w)
    answer_later(w, "Keep it running")
    assert w.open_project(street)
    assert w.open_project(sample)  # the run is not this window's to ask about: no question
    assert w.training.shown and w.project is w.training.run_project
    assert panel.stop_button.isEnabled() and not panel.start_button.isEnabled()
    assert len(panel.loss_curve.getData()[0]) >= 1  # its curve so far, shown again
    with qtbot.waitSignal(w.trainingFinished, timeout=60000) as finished:
        open_gate(out)
    assert finished.args == [True]
    assert w.project.current_model == out.resolve() and project_file(sample)["current_model"] == f"models/{out.name}"
    assert project_file(street)["models"] == []


def test_opening_a_folder_loads_its_model_or_none_and_its_own_settings(window, qtbot, folders):
    w, (sample, street) = window, folders
    panel = w.training_panel
    model = tiny_model_file(sample / "models" / "mine.safetensors")
    with qtbot.waitSignal(w.models.changed, timeout=30000):
        w.open_model(model)
    assert w.project.current_model == model.resolve()
    panel.iters.setValue(300)
    panel.auto.setChecked(True)
    panel.crop.setValue(96)

    assert w.open_project(street)
    assert w.models.active is None and w.model_panel.title.text() == "No model"
    assert w.status_model.text() == "no model" and w.model_panel.versions.count() == 0
    assert panel.new.isChecked() and not panel.finetune.isEnabled()  # nothing to fine-tune here
    assert panel.iters.value() == 0 and not panel.auto.isChecked() and panel.crop.value() == 128
    w.segmenting.current()
    assert "No model yet" in w.statusBar().currentMessage() and w.model_flow.class_question is None
    assert "training" not in project_file(street).get("settings", {})

    with qtbot.waitSignal(w.models.changed, timeout=30000):
        assert w.open_project(sample)
    assert w.models.active.path == model.resolve() and w.model_panel.title.text() == "mine"
    assert panel.finetune.isChecked()
    assert panel.iters.value() == 300 and panel.auto.isChecked() and panel.crop.value() == 96
    assert w.close()

    again = MainWindow()  # a restart: the project remembers its settings and its model
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.models.changed, timeout=30000):
        assert again.open_project(sample)
    assert again.training_panel.iters.value() == 300 and again.training_panel.auto.isChecked()
    assert again.models.active.path == model.resolve()
