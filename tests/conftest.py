"""Fixtures for every test folder, and the per-test timeout (pyproject.toml's `timeout`) made to work with Qt.

pytest-timeout's "signal" method raises in the main thread when the time is up, so the one test fails and
the run goes on. Two things can keep that exception from ending a Qt test, and both are handled here:
- a modal dialog's `exec()` (a question no one answers offscreen) is C++ code that runs no Python, so the
  handler would never run: `tests/app/conftest.py` keeps a timer ticking into Python while a Qt test runs,
  and the handler rejects every modal dialog before it raises, so `exec()` returns;
- an exception raised inside a Qt slot is caught by Qt and reported (pytest-qt then fails the test at its
  end) instead of unwinding the test: the test goes on, and usually fails soon after.
If the process is still stuck `BACKSTOP_S` seconds after the timeout (a C++ wait that calls back into no
Python), `faulthandler` prints every thread's stack and ends the process: the run fails instead of hanging
(under pytest-xdist the worker ends, that test is reported failed and a new worker runs the rest).
`SEGASSIST_TEST_BACKSTOP_S` sets `BACKSTOP_S`.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys

import pytest
from pytest_timeout import timeout_sigalrm

from tests.hub_cache import hub_cache, online_hub  # noqa: F401  (a private, offline hub cache; a stand-in hub)

BACKSTOP_S = float(os.environ.get("SEGASSIST_TEST_BACKSTOP_S", "60"))
_stderr_fd: int | None = None  # the terminal's stderr (a test's own is captured, and lost when the process ends)


def pytest_configure(config):
    global _stderr_fd
    _stderr_fd = os.dup(2)  # (pytest's capture is suspended while plugins are configured)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:  # pytest-xdist: the cores shared among the workers (and the processes they start)
        import torch

        threads = max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)


def dismiss_modal_dialogs() -> int:
    """Reject every open modal dialog (innermost first) so the `exec()` waiting on it returns; how many."""
    qt_widgets = sys.modules.get("PySide6.QtWidgets")
    if qt_widgets is None or qt_widgets.QApplication.instance() is None:
        return 0
    dismissed = 0
    while (widget := qt_widgets.QApplication.activeModalWidget()) is not None and dismissed < 20:
        if isinstance(widget, qt_widgets.QDialog):
            widget.reject()
        else:
            widget.close()
        dismissed += 1
    return dismissed


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # (without pytest-timeout: not called)
def pytest_timeout_set_timer(item, settings):
    if settings.method != "signal" or sys.platform == "win32":
        return None  # pytest-timeout's own timer

    def expired(signum, frame):
        __tracebackhide__ = True
        dismiss_modal_dialogs()
        timeout_sigalrm(item, settings)

    def cancel():
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        faulthandler.cancel_dump_traceback_later()

    item.cancel_timeout = cancel
    signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, settings.timeout)
    faulthandler.dump_traceback_later(settings.timeout + BACKSTOP_S, exit=True,
                                      file=_stderr_fd if _stderr_fd is not None else sys.stderr)
    return True
