"""The whole loop with real mouse and key events on the sample project (small, with a tiny model): train,
segment all, next uncertain, paint, undo, mark reviewed, fine-tune, export, quit during a run, checking
the files on disk after each step."""

import json

import numpy as np
from PySide6.QtCore import QPointF, Qt, QTimer

import engine
from app.window.main_window import MainWindow
from resources.sample_project import make_sample_project

TINY = "channels=16 c1_channels=8 aux_channels=8 output_stride=8"


def project_file(w) -> dict:
    return json.loads((w.project.folder / "segassist.json").read_text())


def click(qtbot, widget):
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def stroke(qtbot, w, points):
    vp = w.canvas.viewport()

    def at(y, x):
        return w.canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))

    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=at(*points[0]))
    for p in points[1:]:
        qtbot.mouseMove(vp, at(*p))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=at(*points[-1]))


def train(qtbot, w, mode: str, iters: int = 3):
    panel = w.training_panel
    (panel.new if mode == "new" else panel.finetune).setChecked(True)
    if mode == "new":
        panel.arch.setCurrentText("deeplabv3plus")
        panel.backbone.setCurrentText("test_resnet")
        panel.weights.set_value(False)  # timm's tiny test model: random weights, nothing to download
        panel.options.setText(TINY)
    panel.iters.setValue(iters)
    panel.crop.setValue(32)
    panel.batch.setValue(2)
    panel.device.setCurrentText("cpu")
    panel.precision.setCurrentText("fp32")
    click(qtbot, panel.start_button)


def test_the_whole_loop_on_the_sample_project(qtbot, tmp_path):
    folder = make_sample_project(tmp_path / "sample", n=8, size=64, dense=3, scribbled=1)
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    assert w.open_project(folder)
    labels_before = sorted(p.name for p in (folder / "labels").glob("*.png"))
    assert len(labels_before) == 4

    # train a new model: it becomes the project's current version and proposes labels for the rest
    with qtbot.waitSignal(w.predictionsDone, timeout=120000):
        with qtbot.waitSignal(w.trainingFinished, timeout=120000) as finished:
            train(qtbot, w, "new")
        assert finished.args == [True], w.last_warning
    first = w.models.active.path
    assert first.parent == folder / "models" and first.is_file()
    w.project_saver.flush()
    saved = project_file(w)
    assert saved["current_model"] == f"models/{first.name}"
    assert not any(p.name.endswith(".ckpt") for p in (folder / "models").iterdir())

    # segment all: every image gets a cached proposal and a score
    with qtbot.waitSignal(w.predictionsDone, timeout=60000):
        click(qtbot, w.model_panel.segment_all_button)
    assert len(list((folder / ".segassist" / "predictions").glob("*.npz"))) == 8
    w.project_saver.flush()
    assert all(v["mean_entropy"] is not None for v in project_file(w)["images"].values())

    # next uncertain: the least certain image not yet reviewed
    click(qtbot, w.images_panel.next_button)
    entry = w.editor.entry
    pool = [e for e in w.project.images if e.status != "reviewed"]
    assert entry.status != "reviewed" and entry.mean_entropy == max(e.mean_entropy for e in pool)
    label_file = w.project.label_path(entry)
    before = engine.read_label(label_file).copy() if label_file.exists() else np.full((64, 64), 255, np.uint8)

    # paint with class 2, then undo: the label file follows each time
    w.canvas.setFocus()
    qtbot.keyClick(w.canvas, Qt.Key.Key_2)
    w.tool_options.set_brush_radius(2)
    stroke(qtbot, w, [(30, 10), (30, 30), (30, 50)])
    qtbot.waitUntil(lambda: label_file.exists() and not w.editor.doc.dirty, timeout=10000)
    assert (engine.read_label(label_file)[30, 10:51] == 1).all()
    qtbot.keyClick(w.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not w.editor.doc.dirty, timeout=10000)
    np.testing.assert_array_equal(engine.read_label(label_file), before)

    # paint again and mark reviewed: the status is on disk at once
    stroke(qtbot, w, [(20, 10), (20, 40)])
    click(qtbot, w.images_panel.review_button)
    assert (engine.read_label(label_file)[20, 10:41] == 1).all()
    assert project_file(w)["images"][entry.name]["status"] == "reviewed"

    # fine-tune the current version: a second version whose parent is the first. A tiny model may score
    # below its parent on the validation images: then it is kept unused until "Use it anyway".
    segmented = []
    w.predictionsDone.connect(lambda *args: segmented.append(args))
    with qtbot.waitSignal(w.trainingFinished, timeout=120000) as finished:
        train(qtbot, w, "finetune")
    if finished.args == [False]:
        assert w.last_warning is None and "is worse than" in w.training_panel.result.text()
        assert w.models.active.path == first
        with qtbot.waitSignal(w.predictionsDone, timeout=120000):
            click(qtbot, w.training_panel.use_button)
    else:
        qtbot.waitUntil(lambda: bool(segmented), timeout=120000)
    second = w.models.active.path
    assert second != first and second.is_file()
    w.project_saver.flush()
    versions = {m["path"].split("/")[-1]: m for m in project_file(w)["models"]}
    assert versions[second.name]["parent"] == first.name

    # export: a palette PNG per label file, equal to the project's labels
    out = tmp_path / "export"
    out.mkdir()
    assert w.transfer.export_labels(out) is not None
    qtbot.waitUntil(lambda: not w.transfer.palette_jobs.busy, timeout=30000)
    exported = sorted(p.name for p in out.glob("*.png"))
    assert exported == sorted(p.name for p in (folder / "labels").glob("*.png"))
    np.testing.assert_array_equal(engine.read_label(out / label_file.name), engine.read_label(label_file))

    # quit during a run: asked, stopped, the model so far kept as a version, nothing left behind
    train(qtbot, w, "finetune", iters=100000)
    qtbot.waitUntil(lambda: w.training_panel.progress.value() >= 1, timeout=60000)
    third = w.training._out

    def stop_and_keep():
        next(b for b in w.quitting.question.buttons() if b.text().startswith("Stop and keep")).click()

    QTimer.singleShot(100, stop_and_keep)
    assert w.close()
    assert w.training.process is None and third.is_file()
    assert any(m["path"].endswith(third.name) for m in project_file(w)["models"])
    files = sorted(p.name for p in (folder / "models").iterdir())
    versions = [first, second, third]
    assert [n for n in files if ".best." not in n] == sorted(v.name for v in versions)  # no checkpoint folders
    assert {n.replace(".best.", ".") for n in files} <= {v.name for v in versions}  # best-so-far files of those runs
