"""The main window on a small project: paint with the mouse, autosave, undo, auto-segment, model
failures, save failures, crash recovery, unreadable images."""

import errno
import html

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QMessageBox

import engine
from app.window.main_window import MainWindow
from tests.app.gui_helpers import make_project, tiny_model_file


@pytest.fixture
def window(qtbot, tmp_path):
    folder = make_project(tmp_path / "project", n=3)
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    assert w.open_project(folder)
    return w


def view_point(canvas, y, x):
    return canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))


def stroke(qtbot, w, points):
    vp = w.canvas.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=view_point(w.canvas, *points[0]))
    for p in points[1:]:
        qtbot.mouseMove(vp, view_point(w.canvas, *p))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=view_point(w.canvas, *points[-1]))


def load_model(qtbot, w, path):
    with qtbot.waitSignal(w.models.changed, timeout=30000):
        w.open_model(path)


def test_painting_with_the_mouse_saves_the_label_file_and_undo_restores_it(window, qtbot):
    w = window
    entry = w.editor.entry
    label_file = w.project.label_path(entry)
    assert not label_file.exists()
    qtbot.keyClick(w.canvas, Qt.Key.Key_2)  # class 2 = index 1 ("object")
    assert w.editor.current_class == 1
    w.tool_options.set_brush_radius(2)
    stroke(qtbot, w, [(10, 10), (10, 20), (10, 30)])
    assert w.editor.doc.dirty
    qtbot.waitUntil(lambda: label_file.exists() and not w.editor.doc.dirty, timeout=10000)
    saved = engine.read_label(label_file)
    assert (saved[10, 10:31] == 1).all() and saved[30, 30] == 255
    assert entry.status == "edited"
    assert w.images_panel.list.item(0).toolTip().count("edited")

    qtbot.keyClick(w.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert (w.editor.doc.labels == 255).all()
    qtbot.waitUntil(lambda: not w.editor.doc.dirty, timeout=10000)
    assert not label_file.exists() and entry.status == "unlabelled"  # every stroke undone: nothing labelled
    assert "edited" not in w.images_panel.list.item(0).toolTip()
    qtbot.keyClick(w.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert (w.editor.doc.labels[10, 10:31] == 1).all()


def test_switching_images_saves_at_once(window, qtbot):
    w = window
    stroke(qtbot, w, [(5, 5), (5, 9)])
    first = w.editor.entry
    w.images_panel.list.setCurrentRow(1)  # as a click in the list does
    assert w.editor.index == 1
    assert (engine.read_label(w.project.label_path(first))[5, 5:10] == 0).all()


def test_keys_pick_tools_classes_and_brush_size(window, qtbot):
    w = window
    for key, title in ((Qt.Key.Key_E, "Eraser"), (Qt.Key.Key_F, "Fill"), (Qt.Key.Key_P, "Polygon"),
                       (Qt.Key.Key_G, "GrabCut"), (Qt.Key.Key_A, "Attention"), (Qt.Key.Key_B, "Brush")):
        qtbot.keyClick(w.canvas, key)
        assert w.canvas.tool.title == title
    r = w.tool_options.brush_radius
    qtbot.keyClick(w.canvas, Qt.Key.Key_BracketRight)
    assert w.editor.brush_radius > r
    qtbot.keyClick(w.canvas, Qt.Key.Key_1)
    assert w.editor.current_class == 0


def test_auto_segment_shows_the_proposal_overlay(window, qtbot, tmp_path):
    w = window
    load_model(qtbot, w, tiny_model_file(tmp_path / "tiny.safetensors"))
    hidden = w.canvas.grab().toImage()
    with qtbot.waitSignal(w.predictionsDone, timeout=30000):
        w.segmenting.current()
    doc, entry = w.editor.doc, w.editor.entry
    assert doc.proposal is not None and doc.proposal.shape == doc.shape
    assert entry.status == "predicted" and entry.mean_entropy is not None
    assert w.project.prediction_path(entry).exists()
    w.canvas.viewport().repaint()
    shown = w.canvas.grab().toImage()
    assert w.canvas.proposal.isVisible() and w.canvas.proposal.tiles_rendered > 0
    assert shown != hidden  # the proposal's colours are drawn over the image
    w.tool_options.show_proposal.setChecked(False)
    w.canvas.viewport().repaint()
    assert w.canvas.grab().toImage() == hidden

    with qtbot.waitSignal(w.predictionsDone, timeout=30000):
        w.segmenting.all()
    assert all(e.status == "predicted" for e in w.project.images)
    w.next_uncertain()
    ranked = w.project.most_uncertain([e for e in w.project.images if e is not entry])
    assert w.editor.entry is ranked[0]


def test_a_failing_model_load_keeps_the_previous_model_and_the_labels(window, qtbot, tmp_path):
    w = window
    good = tiny_model_file(tmp_path / "good.safetensors")
    load_model(qtbot, w, good)
    stroke(qtbot, w, [(8, 8), (8, 12)])
    labels = w.editor.doc.labels.copy()
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a model at all")
    with qtbot.waitSignal(w.models.failed, timeout=30000) as failed:
        w.open_model(bad)
    assert "broken.safetensors" in failed.args[0]
    assert w.models.active.path == good
    assert "broken.safetensors" in w.last_warning and "stays good" in w.last_warning
    np.testing.assert_array_equal(w.editor.doc.labels, labels)
    assert w.project.current_model.name == "good.safetensors"


def test_a_failed_save_keeps_the_edits_and_says_so(window, qtbot, monkeypatch):
    import app.core.storage.label_store as project_module

    w = window

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(project_module, "write_label", disk_full)
    stroke(qtbot, w, [(12, 12), (12, 18)])
    with qtbot.waitSignal(w.editor.saveFailed, timeout=10000) as failed:
        pass
    assert "No space left on device" in failed.args[0]
    assert w.editor.doc.dirty and (w.editor.doc.labels[12, 12:19] == 0).all()
    assert "not saved" in w.status_save.text()
    assert w.project.journal.stems() == [w.editor.entry.stem]  # the stroke is in the recovery journal
    monkeypatch.undo()
    assert w.editor.save_all()
    assert (engine.read_label(w.project.label_path(w.editor.entry))[12, 12:19] == 0).all()


def test_unsaved_edits_are_restored_from_the_journal_at_the_next_start(window, qtbot):
    w = window
    entry = w.editor.entry
    stroke(qtbot, w, [(20, 20), (20, 26)])
    w.editor._timer.stop()  # as if the app died before the autosave
    assert not w.project.label_path(entry).exists()
    w.editor.doc.mark_saved()  # ... and never writes again (closing it at the end saves nothing)

    again = MainWindow()
    qtbot.addWidget(again)
    again.show()
    assert again.open_project(w.project.folder)
    assert "recovered 1 unsaved stroke on 1 image" in again.statusBar().currentMessage()
    boxes = [b for b in again.findChildren(QMessageBox) if b.isVisible()]
    assert len(boxes) == 1 and f"{entry.name}: 1 stroke" in boxes[0].text()
    assert (engine.read_label(again.project.label_path(entry))[20, 20:27] == 0).all()
    assert (again.editor.doc.labels[20, 20:27] == 0).all() and not again.editor.doc.dirty
    again.open_image(1)  # what the person does next does not take the notice away
    assert boxes[0].isVisible()


def test_unreadable_images_are_marked_with_the_reason(qtbot, tmp_path):
    folder = make_project(tmp_path / "p", n=2)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.open_project(folder)
    names = [e.name for e in w.project.images]
    i = names.index("broken.png")
    assert w.project.images[i].error
    assert w.editor.index != i  # the first readable image is opened
    item = w.images_panel.list.item(i)
    assert "unreadable" in w.images_panel.summary.text() and "status: unreadable" in item.toolTip()
    assert html.escape(w.project.images[i].error) in item.toolTip()  # the reason, on hover
    w.open_image(i)
    assert w.editor.doc is None and "Cannot open broken.png" in w.statusBar().currentMessage()
    w.open_image(names.index("img00.png"))
    assert w.editor.doc is not None


def test_switching_images_frees_the_previous_document(window):
    import weakref

    w = window
    old = weakref.ref(w.editor.doc)
    w.open_image(1)
    w.open_image(2)
    assert old() is None  # no reference cycle keeps an image's arrays alive until a garbage collection


def test_grabcut_box_paints_the_object(window, qtbot):
    w = window
    doc = w.editor.doc
    object_mask = doc.image.min(axis=2) >= 170  # the bright rectangle of the synthetic image
    ys, xs = np.nonzero(object_mask)
    w.select_class(1)
    qtbot.keyClick(w.canvas, Qt.Key.Key_G)
    vp = w.canvas.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=view_point(w.canvas, ys.min() - 3, xs.min() - 3))
    qtbot.mouseMove(vp, view_point(w.canvas, ys.max() + 3, xs.max() + 3))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=view_point(w.canvas, ys.max() + 3, xs.max() + 3))
    qtbot.waitUntil(lambda: (doc.labels == 1).any(), timeout=20000)  # GrabCut runs on a worker thread
    painted = doc.labels == 1
    assert (painted & object_mask).sum() > 0.9 * object_mask.sum()
    assert (painted & ~object_mask).sum() < 0.1 * object_mask.sum()
    doc.undo()
    assert not (doc.labels == 1).any()  # one undo step


def test_accepting_the_proposal_in_a_region_and_everywhere_else(window, qtbot, tmp_path):
    w = window
    load_model(qtbot, w, tiny_model_file(tmp_path / "tiny.safetensors"))
    with qtbot.waitSignal(w.predictionsDone, timeout=30000):
        w.segmenting.current()
    doc = w.editor.doc
    qtbot.keyClick(w.canvas, Qt.Key.Key_R)
    vp = w.canvas.viewport()
    for y, x in ((4, 4), (4, 30), (30, 30)):
        qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=view_point(w.canvas, y, x))
    qtbot.mouseDClick(vp, Qt.MouseButton.LeftButton, pos=view_point(w.canvas, 30, 4))
    inside = doc.labels != 255
    assert inside[15, 15] and not inside[40, 50]
    np.testing.assert_array_equal(doc.labels[inside], doc.proposal[inside])
    qtbot.keyClick(w.canvas, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)  # accept everywhere else
    np.testing.assert_array_equal(doc.labels, doc.proposal)


def test_classes_panel_adds_renames_and_recolours(window):
    w = window
    w.classes_panel.addRequested.emit("sky")
    assert [c.name for c in w.project.classes] == ["background", "object", "sky"]
    assert w.editor.current_class == 2 and w.classes_panel.list.count() == 3
    w.classes_panel.renameRequested.emit(2, "cloud")
    w.classes_panel.recolorRequested.emit(2, (10, 20, 30))
    assert w.project.classes[2].name == "cloud" and tuple(w.project.classes[2].color) == (10, 20, 30)
    assert "cloud" in (w.project.folder / "segassist.json").read_text()
    w.classes_panel.renameRequested.emit(2, "object")  # a duplicate name is refused with a message
    assert w.project.classes[2].name == "cloud" and "object" in w.last_warning


def test_filter_review_and_export(window, qtbot, tmp_path):
    w = window
    stroke(qtbot, w, [(6, 6), (6, 12)])
    w.mark_reviewed()
    assert w.editor.entry.status == "reviewed"
    w.images_panel.filter.setCurrentText("Reviewed")
    hidden = [w.images_panel.list.item(i).isHidden() for i in range(3)]
    assert hidden == [False, True, True]
    out = tmp_path / "export"
    job = w.transfer.export_labels(out)
    qtbot.waitUntil(job.done.is_set, timeout=10000)
    assert [p.name for p in out.iterdir()] == ["img00.png"]
    from PIL import Image

    with Image.open(out / "img00.png") as im:
        assert im.mode == "P" and im.getpalette()[3:6] == list(w.project.classes[1].color)


def test_large_images_load_in_the_background(window, qtbot, monkeypatch):
    import app.services.editor

    w = window
    monkeypatch.setattr(app.services.editor, "LARGE_PIXELS", 100)  # every test image counts as large
    with qtbot.waitSignal(w.editor.documentChanged, timeout=10000, check_params_cb=lambda d: d is not None):
        w.open_image(1)
        assert w.editor.doc is None and w.editor.loading == 1  # the window goes on meanwhile
    assert w.editor.doc is not None and w.editor.entry.name == "img01.png"
    assert w.canvas.doc is w.editor.doc
    w.open_image(2)
    w.open_image(0)  # image 2 is superseded before it is shown
    qtbot.waitUntil(lambda: w.editor.doc is not None, timeout=10000)
    w.editor.loader.wait()
    qtbot.wait(50)
    assert w.editor.entry.name == "img00.png" and w.canvas.doc is w.editor.doc


def test_cancel_and_inference_errors_leave_labels_alone(window, qtbot, tmp_path, monkeypatch):
    import threading
    import time

    w = window
    load_model(qtbot, w, tiny_model_file(tmp_path / "tiny.safetensors"))
    stroke(qtbot, w, [(8, 8), (8, 12)])
    labels = w.editor.doc.labels.copy()
    predictor = w.models.active.predictor
    started = threading.Event()

    def waits_for_cancel(image, should_stop=None, **kwargs):
        started.set()
        while not should_stop():
            time.sleep(0.01)
        raise engine.Cancelled("prediction cancelled")

    outcomes = []
    w.segmenting.finished.connect(outcomes.append)
    monkeypatch.setattr(predictor, "predict", waits_for_cancel)
    w.segmenting.all()
    assert started.wait(10)
    qtbot.mouseClick(w.model_panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(outcomes), timeout=10000)
    assert outcomes == ["cancelled"] and not w.model_panel.progress.isVisible()

    def fails(image, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(predictor, "predict", fails)
    w.segmenting.all()
    qtbot.waitUntil(lambda: len(outcomes) == 2, timeout=10000)
    assert outcomes[1] == "done"
    assert all(e.status != "predicted" and e.mean_entropy is None for e in w.project.images)
    np.testing.assert_array_equal(w.editor.doc.labels, labels)
    assert w.editor.doc.proposal is None


def answer_class_question(qtbot, w, text):
    qtbot.waitUntil(lambda: w.model_flow.class_question is not None and w.model_flow.class_question.isVisible())
    box = w.model_flow.class_question
    button = next(b for b in box.buttons() if b.text().startswith(text))
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_a_model_with_other_classes_is_used_only_as_the_person_chooses(window, qtbot, tmp_path):
    w = window
    load_model(qtbot, w, tiny_model_file(tmp_path / "three.safetensors", classes=("sky", "object", "background")))
    box = w.model_flow.class_question
    assert box is not None and "Only in the model: sky." in box.text()
    qtbot.mouseClick(box.button(box.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    w.segmenting.current()  # asked again before segmenting; nothing runs until answered
    assert not w.segmenting.running and w.editor.doc.proposal is None
    with qtbot.waitSignal(w.predictionsDone, timeout=30000):
        answer_class_question(qtbot, w, "Map by name")
    proposal = w.editor.doc.proposal
    assert set(np.unique(proposal).tolist()) <= {0, 1, 255}  # "sky" is not a project class
    raw = w.models.active.predictor.predict(w.editor.doc.image).labels
    np.testing.assert_array_equal(proposal[raw == 2], 0)  # the model's background (2) is the project's 0
    np.testing.assert_array_equal(proposal[raw == 0], 255)
    with qtbot.waitSignal(w.predictionsDone, timeout=30000):
        w.segmenting.current()  # the choice holds for this model: not asked again
    assert w.model_flow.class_question is None


def test_use_the_model_s_classes_only_before_labelling(window, qtbot, tmp_path):
    w = window
    load_model(qtbot, w, tiny_model_file(tmp_path / "three.safetensors", classes=("background", "object", "sky")))
    answer_class_question(qtbot, w, "Use the model's classes")
    assert [c.name for c in w.project.classes] == ["background", "object", "sky"]
    with qtbot.waitSignal(w.predictionsDone, timeout=30000):
        w.segmenting.current()
    assert w.model_flow.class_question is None
    other = tiny_model_file(tmp_path / "other.safetensors", classes=("background", "car", "sky"))
    stroke(qtbot, w, [(5, 5), (5, 8)])
    assert w.editor.save()
    load_model(qtbot, w, other)
    assert not w.model_flow.adopt_classes() and "car" not in [c.name for c in w.project.classes]


def test_segment_without_a_model_says_what_to_do(window, qtbot):
    w = window
    assert w.acts.segment.isEnabled()
    w.acts.segment.trigger()
    assert w.statusBar().currentMessage().startswith("No model yet")


def test_the_selected_class_never_leaks_into_another_project(window, qtbot, tmp_path):
    from app.core.storage.project import Project

    w = window
    many = make_project(tmp_path / "seven", n=1)
    Project.open(many, [f"c{i}" for i in range(7)])
    assert w.open_project(many)
    qtbot.keyClick(w.canvas, Qt.Key.Key_7)
    assert w.editor.current_class == 6
    assert w.open_project(window.project.folder.parent / "project")  # the two-class project again
    assert w.editor.current_class == 0 and w.classes_panel.current() == 0
    w.tool_options.set_brush_radius(2)
    stroke(qtbot, w, [(10, 10), (10, 20)])
    assert set(np.unique(w.editor.doc.labels)) == {0, 255}
    w.editor.current_class = 6  # whatever asks for a class the project lacks paints nothing
    assert w.editor.current_class is None
    stroke(qtbot, w, [(30, 10), (30, 20)])
    assert "Pick a class first" in w.statusBar().currentMessage()
    w.editor.save()
    assert set(np.unique(engine.read_label(w.project.label_path(w.editor.entry)))) == {0, 255}


def test_file_dialogs_start_in_the_project_folder(window, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    asked = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda parent, title, start: asked.append(start) or "")
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda parent, title, start, filters: asked.append(start) or ("", ""))
    window.project_flow.ask_open()
    window.transfer.ask_export_labels()
    window.model_flow.ask_import()
    assert asked == [str(window.project.folder)] * 3


def click_box_button(qtbot, box, text):
    button = next(b for b in box.buttons() if b.text() == text)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_deleting_and_reordering_classes_remaps_the_labels_after_asking(window, qtbot):
    w = window
    w.class_flow.add("sky")
    assert [c.name for c in w.project.classes] == ["background", "object", "sky"]
    assert w.editor.current_class == 2
    w.tool_options.set_brush_radius(2)
    stroke(qtbot, w, [(10, 10), (10, 20)])  # sky
    w.select_class(1)
    stroke(qtbot, w, [(30, 10), (30, 20)])  # object
    assert w.editor.save()
    path = w.project.label_path(w.editor.entry)

    w.classes_panel.set_current(2)
    qtbot.mouseClick(w.classes_panel.up, Qt.MouseButton.LeftButton)  # sky before object: asks first
    box = next(b for b in w.findChildren(QMessageBox) if b.isVisible())
    assert "Swap" in box.text()
    click_box_button(qtbot, box, "Reorder")
    assert [c.name for c in w.project.classes] == ["background", "sky", "object"]
    saved = engine.read_label(path)
    assert (saved[10, 10:21] == 1).all() and (saved[30, 10:21] == 2).all()
    assert w.editor.current_class == 1 and (w.editor.doc.labels == saved).all()

    box = w.class_flow.ask_delete(1)
    click_box_button(qtbot, box, "Cancel")
    assert len(w.project.classes) == 3
    box = w.class_flow.ask_delete(1)
    assert "cannot be undone" in box.text()
    click_box_button(qtbot, box, "Delete")
    assert [c.name for c in w.project.classes] == ["background", "object"]
    saved = engine.read_label(path)
    assert (saved[10, 10:21] == 255).all() and (saved[30, 10:21] == 1).all()
    assert w.editor.doc.num_classes == 2 and w.editor.current_class == 0


def test_segment_all_writes_the_project_file_off_the_gui_thread_and_rarely(qtbot, tmp_path, monkeypatch):
    import json
    import threading

    from app.core.storage import project_file as project_module

    folder = make_project(tmp_path / "many", n=8)
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.open_project(folder)
    load_model(qtbot, w, tiny_model_file(tmp_path / "tiny.safetensors"))
    real, writers = project_module.atomic_write_bytes, []

    def spy(path, data):
        writers.append(threading.current_thread() is threading.main_thread())
        return real(path, data)

    monkeypatch.setattr(project_module, "atomic_write_bytes", spy)
    with qtbot.waitSignal(w.predictionsDone, timeout=60000):
        w.segmenting.all()
    qtbot.waitUntil(lambda: not w.project.dirty and not w.project_saver.jobs.busy, timeout=10000)
    assert writers and not any(writers)  # never on the GUI thread
    assert len(writers) <= 3  # one write per debounce, not one per image
    saved = json.loads((folder / "segassist.json").read_text())["images"]
    assert all(saved[e.name]["mean_entropy"] is not None and saved[e.name]["status"] == "predicted"
               for e in w.project.images)


def test_a_question_about_a_previous_model_goes_when_another_model_loads(window, qtbot, tmp_path):
    w = window
    load_model(qtbot, w, tiny_model_file(tmp_path / "three.safetensors", classes=("sky", "object", "background")))
    box = w.model_flow.class_question
    assert box is not None and box.isVisible()
    load_model(qtbot, w, tiny_model_file(tmp_path / "same.safetensors"))
    assert w.model_flow.class_question is None and not box.isVisible()


def test_attention_click_shows_maps_and_a_new_model_clears_them(window, qtbot, tmp_path):
    w = window
    load_model(qtbot, w, tiny_model_file(tmp_path / "tiny.safetensors"))
    qtbot.keyClick(w.canvas, Qt.Key.Key_A)
    qtbot.mouseClick(w.canvas.viewport(), Qt.MouseButton.LeftButton, pos=view_point(w.canvas, 20, 30))
    qtbot.waitUntil(lambda: bool(w.attention_panel.maps), timeout=30000)
    assert w.canvas.attention is not None and w.canvas.marker is not None  # the first map is drawn
    assert "Pixel x 30, y 20" in w.attention_panel.info.text()
    load_model(qtbot, w, tiny_model_file(tmp_path / "other.safetensors", seed=1))
    assert w.canvas.attention is None and w.canvas.marker is None and not w.attention_panel.maps


def test_proposals_use_flip_augmentation_unless_the_person_turns_it_off(window, qtbot, tmp_path):
    w = window
    assert w.model_panel.tta.isChecked() and w.models.options["tta"] is True  # the measured default
    load_model(qtbot, w, tiny_model_file(tmp_path / "m.safetensors"))
    assert w.models.active.predictor.tta and w.models.active.predictor.tta_flip
    with qtbot.waitSignal(w.models.changed, timeout=30000):
        w.model_panel.tta.setChecked(False)  # as a click on the checkbox
    assert w.models.options["tta"] is False and not w.models.active.predictor.tta
