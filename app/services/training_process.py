"""Runs the training command line in a child process (a `QProcess`) and follows its JSON-line events.

The command, its environment and the reading of its output are `training.child`'s (the simulated
annotator runs the same child). `stop()` sends SIGTERM, after which the child finishes the current
iteration, writes the model and still reports `done` (with `stopped: true`). A child that exits without
`done` has failed: the runner reports why (`ChildOutput.failure`) and nothing else changes.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from training import child
from training.config import TrainConfig
from training.events import DoneEvent, Event

REPO_ROOT = child.REPO_ROOT
KILL_AFTER_MS = 60_000  # a child that ignores SIGTERM this long is killed


class TrainingProcess(QObject):
    """One training run of `config` in a child process. Emits every event (a `training.events` dataclass),
    then `succeeded` or `failed`. `program` replaces `python -m training` (tests use a stand-in)."""

    event = Signal(object)      # every event, an `Event`
    log = Signal(str)           # stderr lines and stdout lines that are not events
    succeeded = Signal(object)  # the `DoneEvent`, once the child has exited
    failed = Signal(str)        # why the run produced no model
    finished = Signal()         # after succeeded or failed

    def __init__(self, config: TrainConfig, *, cwd: str | Path | None = None,
                 program: list[str] | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.config = config
        self.command = child.command(config, program)  # the program, then the config's arguments
        self.cwd = Path(cwd) if cwd is not None else REPO_ROOT
        self.output = child.ChildOutput()
        self.stop_requested = False
        self._proc = QProcess(self)
        self._proc.readyReadStandardOutput.connect(self._read_stdout)
        self._proc.readyReadStandardError.connect(self._read_stderr)
        self._proc.finished.connect(self._on_finished)
        self._proc.errorOccurred.connect(self._on_error)
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._proc.kill)
        self._ended = False

    @property
    def running(self) -> bool:
        return self._proc.state() != QProcess.ProcessState.NotRunning

    @property
    def events(self) -> list[Event]:
        """The events so far, in order."""
        return self.output.events

    @property
    def done_event(self) -> DoneEvent | None:
        return self.output.done

    def start(self) -> None:
        env = QProcessEnvironment()
        for key, value in child.environment(os.environ).items():
            env.insert(key, value)
        self._proc.setProcessEnvironment(env)
        self._proc.setWorkingDirectory(str(self.cwd))
        self._proc.start(self.command[0], self.command[1:])

    def stop(self) -> None:
        """Ask the child to stop (SIGTERM): it saves the model so far and reports `done`."""
        if self.running:
            self.stop_requested = True
            self._proc.terminate()
            self._kill_timer.start(KILL_AFTER_MS)

    def kill(self) -> None:
        if self.running:
            self._proc.kill()

    def wait(self, msecs: int = 30000) -> bool:
        return self._proc.waitForFinished(msecs)

    def pid(self) -> int:
        return int(self._proc.processId())

    def _read_stdout(self, final: bool = False) -> None:
        for item in self.output.stdout(bytes(self._proc.readAllStandardOutput()), final=final):
            if isinstance(item, str):
                self.log.emit(item)
            else:
                self.event.emit(item)

    def _read_stderr(self, final: bool = False) -> None:
        for line in self.output.stderr(bytes(self._proc.readAllStandardError()), final=final):
            self.log.emit(line)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._end(None, f"the training process could not start: {self._proc.errorString()}")

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._kill_timer.stop()
        self._read_stdout(final=True)
        self._read_stderr(final=True)
        if self.output.done is not None:
            self._end(self.output.done, None)
            return
        crashed = exit_status == QProcess.ExitStatus.CrashExit
        self._end(None, self.output.failure(exit_code, crashed=crashed, stop_requested=self.stop_requested))

    def _end(self, done: DoneEvent | None, why: str | None) -> None:
        if self._ended:
            return
        self._ended = True
        if done is not None:
            self.succeeded.emit(done)
        else:
            self.failed.emit(why or "training failed")
        self.finished.emit()
