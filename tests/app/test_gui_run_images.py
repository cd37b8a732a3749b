"""Before Train, the Training panel says how many images the run trains and validates on, and warns when a new
model would train on too few; a first model never trains on fewer images than it validates on."""

from PySide6.QtCore import Qt

import engine
from app.window.main_window import MainWindow
from tests.app.gui_helpers import make_project, set_tiny_run

TINY = "channels=16 c1_channels=8 aux_channels=8 output_stride=8"


def open_window(qtbot, folder):
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    assert w.open_project(folder)
    return w


def review_all(w) -> None:
    for i, entry in enumerate(w.project.images):
        if entry.status == "edited":
            w.open_image(i)
            w.mark_reviewed()


def test_three_reviewed_images_all_train_and_the_panel_says_so_before_train(qtbot, tmp_path):
    w = open_window(qtbot, make_project(tmp_path / "project", n=5, labelled=3))
    panel = w.training_panel
    review_all(w)
    assert [e.status for e in w.project.images].count("reviewed") == 3
    assert panel.new.isChecked()  # no model yet
    text = panel.run_images.text()
    assert text.startswith("Trains on 3 images; none validates yet") and "no score" in text
    assert "Too few" not in text and not panel.run_images.property("warning")  # enough from ImageNet weights
    assert panel.run_images.isVisible()  # above the settings, beside the Train button
    assert panel.run_images.mapTo(panel, panel.run_images.rect().topLeft()).y() < panel.settings_box.y()
    panel.backbone.setCurrentText("test_resnet")
    panel.weights.set_value(False)
    set_tiny_run(panel, TINY)
    with qtbot.waitSignal(w.trainingFinished, timeout=120000) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        assert not panel.run_images.isVisible()  # the run's own progress and counts take over
    assert finished.args == [True], panel.log.toPlainText()[-2000:]
    history = engine.load_model(w.models.active.path).meta["history"][-1]
    assert history["train_images"] == 3 and w.project.models[-1].val_images == 0
    assert panel.run_images.isVisible()


def test_validation_never_outnumbers_training_as_images_are_reviewed(qtbot, tmp_path):
    w = open_window(qtbot, make_project(tmp_path / "project", n=12, labelled=10))
    panel = w.training_panel
    project = w.project
    counts = []
    for i in range(10):
        w.open_image(i)
        w.mark_reviewed()
        labelled = [e.name for e in project.labelled()]
        val = project.loop.run_names(labelled)
        counts.append((len(labelled) - len(val), len(val)))
        assert len(labelled) - len(val) >= len(val)
    # the labelled images not yet reviewed train too; the validation set comes from reviewed ones
    assert counts[0] == (10, 0) and all(v in (0, 2) for _, v in counts)
    assert panel.run_images.text() == "Trains on 8 images, validates on 2."
    assert not panel.run_images.property("warning")
    panel.finetune.setEnabled(True)
    panel.finetune.setChecked(True)
    assert panel.run_images.text() == "Trains on 8 images, validates on 2."


def test_only_reviewed_and_labelled_count(qtbot, tmp_path):
    w = open_window(qtbot, make_project(tmp_path / "project", n=6, labelled=4))
    panel = w.training_panel
    assert panel.run_images.text().startswith("Trains on 4 images; none validates")
    review_all(w)
    assert panel.run_images.text() == ("Trains on 2 images, validates on 2. Too few for a useful new model: "
                                       "label 1 more first.")
    assert panel.run_images.property("warning") and panel.run_images.isVisible()
