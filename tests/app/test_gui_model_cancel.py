"""A model call that never returns: Cancel frees the model thread for the next load at once, and
closing the window ends the process (the stuck job is left behind)."""

import threading
import time

from app.services.model_service import ModelService
from app.services.workers import JobRunner
from bench.limits import run_stuck_load_child
from tests.app.gui_helpers import make_project


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
    """The process ends (the subprocess timeout is generous; `python -m bench.limits` times it)."""
    folder = make_project(tmp_path / "project", n=1)
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"never read")
    child = run_stuck_load_child(folder, model, timeout=240)
    assert child.returncode == 0, child.stderr[-2000:]
    assert "did not finish; exiting without waiting" in child.stderr


def test_closing_the_window_while_segmenting_leaves_nothing_to_report_into_it(qtbot, tmp_path, monkeypatch):
    """A run still going when the window closes is cancelled there; what its job still sends after the window
    is deleted (the last image, the cancel) goes nowhere instead of into deleted objects."""
    from app.window.main_window import MainWindow
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
