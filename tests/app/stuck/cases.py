"""Tests that fail or get stuck on purpose; `tests/app/test_nothing_hangs.py` runs them with pytest in a child
process (they are not collected otherwise: the file name does not start with `test_`).

`STUCK_PID_FILE` names a file where the first case writes the process id of the training it leaves running;
the last case checks that it is gone.
"""

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QProcess, Qt
from PySide6.QtWidgets import QMessageBox

from app.window.main_window import MainWindow
from tests.app.gui_helpers import make_project


@pytest.mark.timeout(120)  # when the teardown waits on the quit question, this fails it as an error
def test_fails_while_a_training_runs(qtbot, tmp_path):
    folder = make_project(tmp_path / "project", n=3, size=(40, 48), labelled=2)
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    assert w.open_project(folder)
    panel = w.training_panel
    panel.new.setChecked(True)
    panel.iters.setValue(100000)
    panel.crop.setValue(32)
    panel.batch.setValue(2)
    panel.device.setCurrentText("cpu")
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.training.process is not None and w.training.process.pid() > 0, timeout=60000)
    Path(os.environ["STUCK_PID_FILE"]).write_text(str(w.training.process.pid()))
    pytest.fail("failing on purpose while the training runs")


@pytest.mark.timeout(3)
def test_a_question_no_one_answers(qtbot):
    box = QMessageBox(QMessageBox.Icon.Question, "Stuck", "No one answers this offscreen.")
    box.exec()  # returns when the timeout rejects it; the timeout's failure, raised in a Qt slot, fails the test


@pytest.mark.timeout(3)
def test_a_wait_that_runs_no_python(qtbot):
    process = QProcess()
    process.start("sleep", ["600"])
    assert process.waitForStarted(10000)
    try:
        process.waitForFinished(-1)  # a C++ wait: only the backstop ends it
    finally:
        process.kill()


def test_after_the_stuck_ones():
    """Runs (on a new worker), and finds the training of the first case stopped."""
    pid = int(Path(os.environ["STUCK_PID_FILE"]).read_text())
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().split()[2] == "Z"  # gone, or a zombie its parent has not reaped
