"""Runs the training command line in a child process and follows its JSON-line events.

The child is `python -m training <TrainConfig.to_args()> --events -`: stdout carries one JSON object
per line (`start`, `step`, `validation`, `checkpoint`, `done`, `error`), parsed back into the
`training.events` dataclasses; stderr is free text for the log view. `stop()`
sends SIGTERM, after which the child finishes the current iteration, writes the model and still
reports `done` (with `stopped: true`). A child that exits without `done` has failed: the runner
reports why (its `error` event or the end of stderr) and nothing else changes.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from training.config import TrainConfig
from training.events import DoneEvent, ErrorEvent, Event, EventParseError, parse_event

REPO_ROOT = Path(__file__).resolve().parents[1]
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
        self.arguments = config.to_args() + ["--events", "-"]
        self.program = program if program is not None else [sys.executable, "-m", "training"]
        self.cwd = Path(cwd) if cwd is not None else REPO_ROOT
        self.events: list[Event] = []
        self.done_event: DoneEvent | None = None
        self.error_message: str | None = None
        self.stop_requested = False
        self._stdout = b""
        self._stderr = b""
        self._stderr_tail: list[str] = []
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

    def start(self) -> None:
        env = QProcessEnvironment.systemEnvironment()
        # The child imports `training` and `engine` from this checkout even when it is not installed.
        path = env.value("PYTHONPATH", "")
        env.insert("PYTHONPATH", str(REPO_ROOT) + (os.pathsep + path if path else ""))
        env.insert("PYTHONUNBUFFERED", "1")
        self._proc.setProcessEnvironment(env)
        self._proc.setWorkingDirectory(str(self.cwd))
        self._proc.start(self.program[0], self.program[1:] + self.arguments)

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

    def _read_stdout(self) -> None:
        self._stdout += bytes(self._proc.readAllStandardOutput())
        *lines, self._stdout = self._stdout.split(b"\n")
        for line in lines:
            self._handle_line(line)

    def _handle_line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").strip()
        if not text:
            return
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict) or "event" not in obj:
            self.log.emit(text)
            return
        try:
            event = parse_event(obj)
        except (EventParseError, TypeError) as exc:
            self.log.emit(f"{text}  (not understood: {exc})")
            return
        self.events.append(event)
        if isinstance(event, DoneEvent):
            self.done_event = event
        elif isinstance(event, ErrorEvent):
            self.error_message = event.message or "training failed"
        self.event.emit(event)

    def _read_stderr(self) -> None:
        self._stderr += bytes(self._proc.readAllStandardError())
        *lines, self._stderr = self._stderr.split(b"\n")
        for line in lines:
            self._log_stderr(line)

    def _log_stderr(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip()
        if text:
            self._stderr_tail = (self._stderr_tail + [text])[-20:]
            self.log.emit(text)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._end(None, f"the training process could not start: {self._proc.errorString()}")

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._kill_timer.stop()
        self._read_stdout()
        self._read_stderr()
        if self._stdout:
            self._handle_line(self._stdout)
            self._stdout = b""
        if self._stderr:
            self._log_stderr(self._stderr)
            self._stderr = b""
        if self.done_event is not None:
            self._end(self.done_event, None)
            return
        if self.error_message:
            why = self.error_message
        elif exit_status == QProcess.ExitStatus.CrashExit:
            why = "the training process was killed" if not self.stop_requested else "training was stopped"
        elif exit_code != 0:
            why = f"the training process exited with code {exit_code}"
        else:
            why = "the training process ended without reporting a model"
        if self._stderr_tail and not self.error_message:
            why += ":\n" + "\n".join(self._stderr_tail[-6:])
        self._end(None, why)

    def _end(self, done: DoneEvent | None, why: str | None) -> None:
        if self._ended:
            return
        self._ended = True
        if done is not None:
            self.succeeded.emit(done)
        else:
            self.failed.emit(why or "training failed")
        self.finished.emit()
