"""Qt tests run without a screen: a bare `pytest` gets the offscreen platform too.

An exception inside a Qt override (paintEvent, shape, ...) or a slot fails the test: pytest-qt's
exception capture is on for every test (never disable it with `qt_no_exception_capture`), and a hook
the app installs (`app.cli`) passes exceptions on to it and is removed after each test.

A Qt test never hangs the suite:
- at teardown, before pytest-qt closes the windows, every open `MainWindow` has its training run stopped
  (the child process killed, its files removed) and its background jobs cancelled, and its closing asks
  no question (a test's teardown, not what a person is asked: the quit questions are tested as such);
- while a Qt test runs, a timer calls into Python every `TICK_MS`, so that the per-test timeout (see
  tests/conftest.py) is delivered even while a modal dialog waits for an answer.
"""

from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TICK_MS = 200


@pytest.fixture(autouse=True)
def _exceptions_fail_the_test(request):
    marker = request.node.get_closest_marker("qt_no_exception_capture")
    assert marker is None, "tests must not switch off pytest-qt's exception capture"
    assert not request.config.getini("qt_no_exception_capture"), "qt_no_exception_capture must stay off"
    hook = sys.excepthook
    yield
    sys.excepthook = hook


@pytest.fixture(autouse=True)
def _timeout_reaches_qt(request):
    """A timer that runs Python code while Qt's event loops run (for tests that use qtbot or qapp)."""
    if not {"qtbot", "qapp"} & set(request.fixturenames):
        yield
        return
    from PySide6.QtCore import QTimer

    request.getfixturevalue("qapp")
    tick = QTimer()
    tick.setInterval(TICK_MS)
    tick.timeout.connect(lambda: None)  # the interpreter runs pending signal handlers here
    tick.start()
    yield
    tick.stop()


def open_main_windows() -> list:
    """The app's main windows still open, or [] when no QApplication (or no window) was made."""
    main_window = sys.modules.get("app.window.main_window")
    widgets = sys.modules.get("PySide6.QtWidgets")
    if main_window is None or widgets is None or widgets.QApplication.instance() is None:
        return []
    return [w for w in widgets.QApplication.topLevelWidgets() if isinstance(w, main_window.MainWindow)]


def stop_without_asking(window) -> None:
    """Stop `window`'s training run and jobs, and let it close without a question."""
    from app.services.workers import JobRunner

    window.training.shutdown(keep=False, wait_ms=10000)
    for runner in window.findChildren(JobRunner):
        runner.cancel_all()
    window.quitting.ask = lambda: False  # nothing to keep: the run is gone; unsaved labels are the test's


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item):
    """Before pytest-qt closes the test's widgets (its own teardown hook runs inside this one)."""
    for window in open_main_windows():
        stop_without_asking(window)
    return (yield)
