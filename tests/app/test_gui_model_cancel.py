"""A model call that never returns: Cancel frees the model thread for the next load at once, and
closing the window ends the process within seconds."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from app.model_service import ModelService
from app.workers import JobRunner
from tests.app.gui_helpers import make_project

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import sys, time
from PySide6.QtCore import QTimer
import engine
import app.cli as cli

def stuck_load(path, **kwargs):  # a load (or warm-up) that never ends and never checks for cancel
    while True:
        time.sleep(0.05)

engine.load_model = stuck_load
real_open = cli.open_window

def open_window(*args, **kwargs):
    window, shot = real_open(*args, **kwargs)
    window.open_model(sys.argv[2])
    QTimer.singleShot(800, window.close)
    return window, shot

cli.open_window = open_window
sys.exit(cli.main([sys.argv[1]]))
"""


def test_cancel_abandons_a_stuck_job_and_the_next_one_runs(qtbot):
    service = ModelService()
    release = threading.Event()
    try:
        service.runner.start("stuck", lambda job: release.wait(60))
        assert service.busy
        service.cancel()
        assert not service.busy and service.stuck
        done = []
        service.runner.start("next", lambda job: 42, on_result=done.append)
        qtbot.waitUntil(lambda: done == [42], timeout=5000)
    finally:
        release.set()
    qtbot.waitUntil(lambda: not service.stuck, timeout=5000)


def test_a_closed_runner_drops_what_its_jobs_sent(qtbot):
    runner = JobRunner(1)
    got = []
    runner.start("quick", lambda job: 42, on_result=got.append, on_finished=lambda: got.append("finished"))
    assert runner.wait(5000)  # done: its result is queued, not delivered yet
    assert runner.close()
    qtbot.wait(200)
    assert got == [] and not runner.busy


def test_closing_the_window_during_a_stuck_load_ends_the_process(tmp_path):
    folder = make_project(tmp_path / "project", n=1)
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"never read")
    t0 = time.monotonic()
    child = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(model)], cwd=ROOT, timeout=60,
                           env={**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"},
                           capture_output=True, text=True)
    assert child.returncode == 0, child.stderr[-2000:]
    assert time.monotonic() - t0 < 30
    assert "did not finish; exiting without waiting" in child.stderr


def test_closing_the_window_while_segmenting_leaves_nothing_to_report_into_it(qtbot, tmp_path, monkeypatch):
    """A run still going when the window closes is cancelled there; what its job still sends after the window
    is deleted (the last image, the cancel) goes nowhere instead of into deleted objects."""
    from app.main_window import MainWindow
    from tests.app.gui_helpers import tiny_model_file

    folder = make_project(tmp_path / "project", n=3)
    w = MainWindow()
    try:
        w.show()
        assert w.open_project(folder)
        with qtbot.waitSignal(w.models.changed, timeout=30000):
            w.open_model(tiny_model_file(tmp_path / "model.safetensors"))
        predictor = w.models.active.predictor
        real_predict = predictor.predict
        started = threading.Event()

        def slow(image, should_stop=None, **kwargs):  # a forward pass that does not look at should_stop
            started.set()
            time.sleep(0.5)
            return real_predict(image, should_stop=should_stop, **kwargs)

        monkeypatch.setattr(predictor, "predict", slow)
        w.segmenting.all()
        assert started.wait(10)
        assert w.close()
    finally:
        w.close()
        w.deleteLater()
    qtbot.wait(2000)  # deletes the window, then delivers whatever the job sent meanwhile
