"""One window writes a project at a time: `.segassist/lock` names the holder (user, pid, host, when).

The lock file is created with its content in one step (a temporary file hard-linked into place), so
it is never seen half-written. A lock whose process is gone on this host is stale and taken over
(said in the log); a lock held on another host, or by a live process, refuses with `ProjectLockedError`,
whose `info` names the holder: the person, who may know that window is gone (another host, a process
id reused since), can take it over by passing that `info` back (`acquire(folder, take_over=info)`).
A lock that is not one (a folder, a FIFO, garbage, a file too large to be one) is set aside as
`lock.broken-<time>` and replaced; it is read without ever blocking or recursing without end.
Within one process the lock is shared (counted): two `Project`s of one process are kept from
overwriting each other by the changed-on-disk checks of their saves instead.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import threading
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine.safe_files import read_regular

log = logging.getLogger(__name__)

LOCK_NAME = "lock"
MAX_LOCK_BYTES = 64 << 10  # a lock is a few hundred bytes
MAX_PID = 2**31 - 1  # no system has process ids beyond this; os.kill would overflow on them
_HELD: dict[str, int] = {}  # instance id -> how many Projects of this process share that lock
_GUARD = threading.Lock()


@dataclass(frozen=True)
class LockInfo:
    holder: str
    pid: int
    host: str
    created: str
    instance: str

    def describe(self) -> str:
        return f"{self.holder} on {self.host} (process {self.pid}, since {self.created})"


class ProjectLockedError(RuntimeError):
    """The project is open in another window; `info` says whose."""

    def __init__(self, folder: Path, info: LockInfo):
        super().__init__(f"{folder}: already open in another SegAssist window: {info.describe()}. "
                         "Open it read-only, close the other window first, or take the lock over if that "
                         "window is gone.")
        self.info = info
        self.folder = folder


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _alive(pid: int) -> bool:
    if not 0 < pid <= MAX_PID:  # 0 and negative ids name process groups; 2**40 names nothing
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    except (OSError, OverflowError, ValueError):
        return False
    return True


class ProjectLock:
    """The lock of one project folder, held until `release`."""

    def __init__(self, folder: Path, info: LockInfo):
        self.folder = folder
        self.info = info

    @property
    def path(self) -> Path:
        return self.folder / ".segassist" / LOCK_NAME

    @classmethod
    def acquire(cls, folder: str | Path, *, take_over: LockInfo | None = None) -> ProjectLock:
        """Take the folder's lock; `ProjectLockedError` when a live holder has it, unless `take_over` is
        that holder (the `info` of the error the person saw: a lock that changed since is not taken).
        OSError when the folder cannot be written."""
        folder = Path(folder)
        info = LockInfo(_user(), os.getpid(), socket.gethostname(),
                        datetime.now(UTC).isoformat(timespec="seconds"), uuid.uuid4().hex)
        path = folder / ".segassist" / LOCK_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        with _GUARD:
            mine = read_lock(path)
            if mine is not None and mine.pid == os.getpid() and mine.instance in _HELD:
                _HELD[mine.instance] += 1
                return cls(folder, mine)
        for _ in range(3):
            tmp = path.with_name(f".{LOCK_NAME}.{info.instance}.tmp")
            tmp.write_text(json.dumps(asdict(info)), encoding="utf-8")
            try:
                os.link(tmp, path)
            except FileExistsError:
                other = read_lock(path)
                if other is None:
                    _set_aside(path)
                    continue
                if not _stale(other):
                    if take_over is None or take_over != other:
                        raise ProjectLockedError(folder, other) from None
                    log.warning("%s: taking over the lock of %s, as the person asked", folder, other.describe())
                else:
                    log.warning("%s: taking over a stale lock (%s)", folder, other.describe())
                if os.path.isdir(path) and not os.path.islink(path):
                    _set_aside(path)
                else:
                    path.unlink(missing_ok=True)
                continue
            finally:
                tmp.unlink(missing_ok=True)
            with _GUARD:
                _HELD[info.instance] = 1
            return cls(folder, info)
        raise ProjectLockedError(folder, read_lock(path) or info)

    def release(self) -> None:
        """Give the lock up (only when it is still ours)."""
        with _GUARD:
            left = _HELD.get(self.info.instance, 0) - 1
            if left > 0:
                _HELD[self.info.instance] = left
                return
            _HELD.pop(self.info.instance, None)
        current = read_lock(self.path)
        if current is not None and current.instance == self.info.instance:
            self.path.unlink(missing_ok=True)


def read_lock(path: Path) -> LockInfo | None:
    """The lock file's holder, None when it is missing or not a lock (a folder, a FIFO, garbage)."""
    try:
        doc = json.loads(read_regular(path, MAX_LOCK_BYTES).decode("utf-8"))
        info = LockInfo(_shown(doc["holder"]), int(doc["pid"]), _shown(doc["host"]), _shown(doc["created"]),
                        str(doc["instance"]))
    except (OSError, ValueError, KeyError, TypeError, RecursionError, OverflowError):
        return None
    return info if all(len(v) <= 1000 for v in (info.holder, info.host, info.created, info.instance)) else None


def _shown(value) -> str:
    """A lock field as text a log, a dialog and a UTF-8 stream can show: lone surrogates and control
    characters (a hostile or damaged lock file can hold them) escaped."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _set_aside(path: Path) -> None:
    """Move a lock that is not one out of the way (kept beside it, for a look)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    kept = path.with_name(f"{LOCK_NAME}.broken-{stamp}")
    try:
        os.rename(path, kept)
    except FileNotFoundError:
        return
    log.warning("%s: not a lock; set aside as %s", path, kept.name)


def _stale(info: LockInfo) -> bool:
    if info.host != socket.gethostname():
        return False  # cannot tell from here
    if info.pid == os.getpid():
        with _GUARD:
            return info.instance not in _HELD
    return not _alive(info.pid)
