"""`segassist.json` written off the GUI thread: bookkeeping marks the project dirty, and shortly after the
last change one snapshot is written in the background ("Segment all" writes it about once a second, not
once per image).

Labels never wait for this: a stroke is in the journal, then in its label file, before "saved" shows;
the statuses those files imply are re-derived from them at the next open.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer, Signal

from app.services.workers import JobRunner

log = logging.getLogger(__name__)

DEBOUNCE_MS = 1000


class ProjectSaver(QObject):
    """Debounces a project's bookkeeping saves and writes them on a worker thread."""

    failed = Signal(str)  # why segassist.json could not be written (tried again at the next change)

    def __init__(self, parent: QObject | None = None, debounce_ms: int = DEBOUNCE_MS):
        super().__init__(parent)
        self.project = None
        self.writes = 0  # snapshots written (for tests and benchmarks)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self._write_in_background)
        self.jobs = JobRunner(1, self)

    def attach(self, project) -> None:
        """Save `project` from now on (the previous one is flushed first)."""
        self.flush()
        if self.project is not None:
            self.project.deferred_save = None
        self.project = project
        if project is not None:
            project.deferred_save = self.schedule

    def schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def _write_in_background(self) -> None:
        project = self.project
        if project is None or not project.dirty:
            return
        generation, data = project.snapshot()

        def failed(why: str) -> None:
            project.dirty = True
            log.warning("cannot write %s: %s", project.project_file, why)
            self.failed.emit(f"Could not write {project.project_file}: {why}")

        self.jobs.start("saving the project file", lambda job: self._write(project, generation, data),
                        on_failed=failed)

    def _write(self, project, generation: int, data: bytes) -> None:
        if project.write_snapshot(generation, data):
            self.writes += 1

    def flush(self) -> bool:
        """Write what is pending now (on quit, before another project opens). False when it failed."""
        self._timer.stop()
        self.jobs.wait()
        project = self.project
        if project is None or not project.dirty:
            return True
        try:
            generation, data = project.snapshot()
            self._write(project, generation, data)
        except OSError as exc:
            project.dirty = True
            self.failed.emit(f"Could not write {project.project_file}: {exc.strerror or exc}")
            return False
        return True
