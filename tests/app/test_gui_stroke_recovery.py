"""A stroke still being drawn when the app is killed (kill -9) comes back, up to its last journalled chunk, and
the window says so; a finished stroke before it comes back whole."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

import engine
from app.core.storage.journal import Journal
from app.window.main_window import MainWindow
from tests.app.gui_helpers import make_project

ROOT = Path(__file__).resolve().parents[2]
DRAWING_CHILD = """
import os, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from app.window.main_window import MainWindow

app = QApplication([])
w = MainWindow()
w.resize(1280, 800)
w.show()
assert w.open_project(sys.argv[1])
w.tool_options.set_brush_radius(1)
vp = w.canvas.viewport()
at = lambda y, x: w.canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))
QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(5, 5))
QTest.mouseMove(vp, at(5, 40))
QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(5, 40))  # a finished stroke
w.editor._timer.stop()  # never autosaved: only the journal has it
QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(30, 5))
for x in range(6, 41):
    QTest.mouseMove(vp, at(30, x))
    time.sleep(0.02)
app.processEvents()
time.sleep(0.3)
print("drawing", w.editor.doc.in_stroke, flush=True)
os.kill(os.getpid(), 9)  # the button is still down
"""


def test_a_stroke_being_drawn_when_the_app_is_killed_comes_back_and_is_said(qtbot, tmp_path):
    folder = make_project(tmp_path / "p", n=1)
    child = subprocess.run([sys.executable, "-c", DRAWING_CHILD, str(folder)], cwd=ROOT, capture_output=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert "drawing True" in child.stdout
    assert not (folder / "labels" / "img00.png").exists()  # nothing was saved: the journal holds it all
    journal = Journal(folder / ".segassist" / "journal")
    strokes = journal.read("img00")
    assert len(strokes) == 2 and journal.interrupted("img00")  # the chunks of the open stroke are one stroke

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    assert w.open_project(folder)
    labels = engine.read_label(folder / "labels" / "img00.png")
    assert (labels[5, 5:41] == 0).all()  # the finished stroke, whole
    assert (labels[30, 5:30] == 0).all()  # the stroke in progress, up to its last chunk at least
    boxes = [b for b in w.findChildren(QMessageBox) if b.isVisible()]
    assert len(boxes) == 1 and "img00.png: 2 strokes" in boxes[0].text()
    assert "being drawn on img00.png" in boxes[0].text()
    assert w.project.journal.pending() == {}  # saved, so the journal is done with
