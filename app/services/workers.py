"""Background jobs: work that may take long (a model, GrabCut on a big box) runs off the GUI thread.

A `Job` runs a function in a QThreadPool thread. The function gets the job, asks `job.should_stop()`
between units of work, reports `job.progress(done, total, text)` and per-item results with
`job.partial(obj)`; its return value arrives through `result`, an exception through `failed`, and a
cancel (or `engine.Cancelled`) through `cancelled`. Exactly one of the three, then `finished`.

A `JobRunner` delivers those to the slots given to `start` only while it is open: once it is closed (its
window quits) or deleted with its owner, whatever a job still sends is dropped, so a job that ends late
never calls into objects that are gone.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from engine.cancel import Cancelled  # the engine's and the app's one class (imports no torch)

log = logging.getLogger(__name__)


def _is_cancel(exc: BaseException) -> bool:
    return isinstance(exc, Cancelled)


class JobSignals(QObject):
    progress = Signal(int, int, str)
    partial = Signal(object)
    result = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()


class Job(QRunnable):
    """One function call on a pool thread, with progress, partial results and cancel."""

    def __init__(self, name: str, fn: Callable[[Job], object]):
        super().__init__()
        self.setAutoDelete(False)
        self.name = name
        self.fn = fn
        self.signals = JobSignals()
        self._stop = threading.Event()
        self.done = threading.Event()
        self.error: str | None = None

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def cancel(self) -> None:
        self._stop.set()

    def check(self) -> None:
        """Raise `Cancelled` when a cancel was asked for."""
        if self._stop.is_set():
            raise Cancelled(self.name)

    def progress(self, done: int, total: int, text: str = "") -> None:
        self.signals.progress.emit(done, total, text)

    def partial(self, obj: object) -> None:
        self.signals.partial.emit(obj)

    def run(self) -> None:
        try:
            value = self.fn(self)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI as a message
            if _is_cancel(exc):
                self.signals.cancelled.emit()
            else:
                log.error("%s failed:\n%s", self.name, traceback.format_exc())
                self.error = f"{exc}" or type(exc).__name__
                self.signals.failed.emit(self.error)
        else:
            if self._stop.is_set():
                self.signals.cancelled.emit()
            else:
                self.signals.result.emit(value)
        finally:
            self.done.set()
            self.signals.finished.emit()


class JobRunner(QObject):
    """Starts jobs on a thread pool and keeps them alive until they finish.

    `threads=1` makes jobs run one after another (model work: one model in memory at a time)."""

    busyChanged = Signal(bool)

    def __init__(self, threads: int = 1, parent: QObject | None = None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self.jobs: list[Job] = []
        self.closed = False

    @property
    def open(self) -> bool:
        """Whether job results still reach their slots (not closed, and not deleted with its owner)."""
        return not self.closed and shiboken6.isValid(self)

    def _while_open(self, slot):
        def deliver(*args) -> None:
            if self.open:
                slot(*args)
        return deliver

    def start(self, name: str, fn: Callable[[Job], object], *, on_result=None, on_failed=None,
              on_progress=None, on_partial=None, on_cancelled=None, on_finished=None) -> Job:
        job = Job(name, fn)
        for signal, slot in ((job.signals.result, on_result), (job.signals.failed, on_failed),
                             (job.signals.progress, on_progress), (job.signals.partial, on_partial),
                             (job.signals.cancelled, on_cancelled), (job.signals.finished, on_finished)):
            if slot is not None:
                signal.connect(self._while_open(slot))
        job.signals.finished.connect(lambda: self._forget(job))
        was_busy = self.busy
        self.jobs.append(job)
        self.pool.start(job)
        if not was_busy:
            self.busyChanged.emit(True)
        return job

    def _forget(self, job: Job) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
        if not self.jobs and self.open:
            self.busyChanged.emit(False)

    @property
    def busy(self) -> bool:
        return bool(self.jobs)

    def cancel_all(self) -> None:
        for job in list(self.jobs):
            job.cancel()

    def wait(self, msecs: int = 30000) -> bool:
        """Block until every job has finished (used on quit and in tests)."""
        return self.pool.waitForDone(msecs)

    def close(self, msecs: int = 10000) -> bool:
        """On quit: cancel every job, wait up to `msecs` for them to end, and drop whatever they still send
        (results already queued included). False when a job was still running after the wait."""
        if self.closed:
            return self.wait(0)
        self.closed = True
        self.cancel_all()
        return self.wait(msecs)
