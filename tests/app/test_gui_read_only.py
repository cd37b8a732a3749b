"""A project another process holds, opened read-only in the real window: a banner says so, the editing
tools are off (no stroke, no error box), the status bar never says "saved", quitting asks nothing; saving to
another folder turns editing on again, written there."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

import engine
from app.flows.project_flow import ProjectFlow
from app.window.main_window import MainWindow
from tests.app.gui_helpers import make_project

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from app.core.storage.project import Project
project = Project.open(sys.argv[1])
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def held(tmp_path):
    """A project folder whose lock a second process holds."""
    folder = make_project(tmp_path / "shared", n=2, labelled=1)
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], cwd=ROOT, stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        yield folder
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def stroke(qtbot, w, points):
    vp = w.canvas.viewport()

    def at(y, x):
        return w.canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))

    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=at(*points[0]))
    for p in points[1:]:
        qtbot.mouseMove(vp, at(*p))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=at(*points[-1]))


def boxes(w):
    return [b for b in w.findChildren(QMessageBox) if b.isVisible()]


def test_a_read_only_project_says_so_and_cannot_be_painted(qtbot, held, tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(ProjectFlow, "ask_locked", lambda self, exc: asked.append(str(exc)) or "read-only")
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    assert w.open_project(held)
    assert "already open in another SegAssist window" in asked[0]
    banner = w.read_only_banner
    assert banner.isVisible() and "Read-only" in banner.text.text() and "another window" in banner.text.text()
    assert banner.geometry().top() < w.canvas.geometry().top()  # above the image, where the person looks
    for key in "BEFPRGSM":
        assert not w.acts.tools[key].isEnabled(), key
    assert w.acts.tools["A"].isEnabled()  # explaining writes nothing
    for name in ("undo", "accept", "reviewed", "segment", "segment_all", "import_labels", "new_model", "save"):
        assert not getattr(w.acts, name).isEnabled(), name
    assert w.acts.export_labels.isEnabled()
    assert not w.training_panel.start_button.isEnabled() and not w.images_panel.review_button.isEnabled()
    assert not any(b.isEnabled() for b in w.classes_panel.edit_buttons)
    assert "✓ saved" not in w.status_save.text() and "read-only" in w.status_save.text()

    before = w.editor.doc.labels.copy()
    qtbot.keyClick(w.canvas, Qt.Key.Key_B)  # the shortcut picks nothing either
    stroke(qtbot, w, [(10, 10), (10, 30)])
    assert (w.editor.doc.labels == before).all() and not w.editor.doc.dirty
    assert not boxes(w), [b.text() for b in boxes(w)]
    assert w.editor.save_error is None
    assert "✓ saved" not in w.status_save.text()

    monkeypatch.setattr(QMessageBox, "exec", lambda self: pytest.fail(f"asked on quit: {self.text()}"))
    assert w.close()  # nothing to lose: no dialog at all


def test_saving_to_another_folder_turns_editing_on_and_writes_there(qtbot, held, tmp_path, monkeypatch):
    monkeypatch.setattr(ProjectFlow, "ask_locked", lambda self, exc: "read-only")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(elsewhere))
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    assert w.open_project(held)
    qtbot.mouseClick(w.read_only_banner.button, Qt.MouseButton.LeftButton)
    assert w.acts.tools["B"].isEnabled() and w.canvas.tool is not None
    assert "elsewhere" in w.read_only_banner.text.text() and not w.read_only_banner.button.isVisible()
    w.tool_options.set_brush_radius(2)
    stroke(qtbot, w, [(10, 10), (10, 30)])
    assert w.editor.save()
    written = engine.read_label(elsewhere / "labels" / f"{w.editor.entry.stem}.png")
    assert (written[10, 12:28] != 255).all()
    assert not np.array_equal(written, engine.read_label(held / "labels" / f"{w.editor.entry.stem}.png"))
    assert w.status_save.text() == "✓ saved"
