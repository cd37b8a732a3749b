"""A training run in a child process: its command line, its environment, and what it says.

The child is `python -m training <TrainConfig.to_args()> --events -`: stdout carries one JSON object per
line (`start`, `step`, `validation`, `checkpoint`, `done`, `error`), read back into the `training.events`
dataclasses; any other line, and stderr, is free text for a log. A child that exits without `done` has
failed, and `ChildOutput.failure` says why (its `error` event, else how it ended and the end of stderr).

The app follows such a child with a `QProcess` (`app.services.training_process`); `run` here waits for one (the
simulated annotator, `bench.annotator`). Both build it and read it with this module, so a run the benchmark
measures is the run a person starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from training.config import TrainConfig
from training.events import DoneEvent, ErrorEvent, Event, EventParseError, parse_event

REPO_ROOT = Path(__file__).resolve().parents[1]
STDERR_TAIL = 20  # stderr lines kept for a failure's message (the last 6 are quoted)


def command(cfg: TrainConfig, program: Sequence[str] | None = None) -> list[str]:
    """The child's command line; `program` replaces `python -m training` (tests use a stand-in)."""
    head = list(program) if program is not None else [sys.executable, "-m", "training"]
    return [*head, *cfg.to_args(), "--events", "-"]


def environment(base: Mapping[str, str]) -> dict[str, str]:
    """`base` for the child: it imports `training` and `engine` from this checkout even when they are not
    installed, and writes each event as soon as it happens."""
    path = base.get("PYTHONPATH", "")
    return {**base, "PYTHONPATH": str(REPO_ROOT) + (os.pathsep + path if path else ""), "PYTHONUNBUFFERED": "1"}


class ChildOutput:
    """What a training child has said so far: its events in order, the `done` or `error` among them, and
    the end of its stderr. Feed it the bytes as they arrive; it hands back the events and log lines."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.done: DoneEvent | None = None
        self.error: str | None = None  # the message of an `error` event
        self.stderr_tail: list[str] = []
        self._stdout = b""
        self._stderr = b""

    def stdout(self, data: bytes, *, final: bool = False) -> list[Event | str]:
        """The events and the log lines (stdout lines that are not events) in `data`, in order; `final`:
        the stream has ended, so a last line without its newline counts too."""
        self._stdout, lines = _split(self._stdout + data, final)
        return [item for item in map(self._line, lines) if item is not None]

    def stderr(self, data: bytes, *, final: bool = False) -> list[str]:
        """The stderr lines in `data` (the last `STDERR_TAIL` are kept for `failure`)."""
        self._stderr, raw = _split(self._stderr + data, final)
        lines = [text for text in (r.decode("utf-8", "replace").rstrip() for r in raw) if text]
        self.stderr_tail = (self.stderr_tail + lines)[-STDERR_TAIL:]
        return lines

    def _line(self, raw: bytes) -> Event | str | None:
        text = raw.decode("utf-8", "replace").strip()
        if not text:
            return None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict) or "event" not in obj:
            return text
        try:
            event = parse_event(obj)
        except (EventParseError, TypeError) as exc:
            return f"{text}  (not understood: {exc})"
        self.events.append(event)
        if isinstance(event, DoneEvent):
            self.done = event
        elif isinstance(event, ErrorEvent):
            self.error = event.message or "training failed"
        return event

    def failure(self, exit_code: int, *, crashed: bool = False, stop_requested: bool = False) -> str:
        """Why a child that ended (`exit_code`; `crashed`: killed by a signal) without `done` wrote no model."""
        if self.error:
            return self.error
        if crashed:
            why = "training was stopped" if stop_requested else "the training process was killed"
        elif exit_code != 0:
            why = f"the training process exited with code {exit_code}"
        else:
            why = "the training process ended without reporting a model"
        if self.stderr_tail:
            why += ":\n" + "\n".join(self.stderr_tail[-6:])
        return why


def _split(buffer: bytes, final: bool) -> tuple[bytes, list[bytes]]:
    """Complete lines of `buffer` and what is left of it (all of it is lines when `final`)."""
    *lines, rest = buffer.split(b"\n")
    if final:
        return b"", [*lines, rest] if rest else lines
    return rest, lines


def run(cfg: TrainConfig, *, cwd: Path, program: Sequence[str] | None = None,
        stderr: IO[str] | None = None) -> tuple[DoneEvent | None, str | None]:
    """Train `cfg` in a child process and wait for it: its `done` event, or None and why there is none.
    Its stderr goes to `stderr` (nowhere when None)."""
    output = ChildOutput()
    with subprocess.Popen(command(cfg, program), cwd=cwd, env=environment(os.environ), stdout=subprocess.PIPE,
                          stderr=stderr if stderr is not None else subprocess.DEVNULL) as proc:
        for chunk in iter(lambda: proc.stdout.read1(1 << 16), b""):
            output.stdout(chunk)
        output.stdout(b"", final=True)
        code = proc.wait()
    if output.done is not None:
        return output.done, None
    return None, output.failure(code, crashed=code < 0)
