"""One window writes a project at a time: `.segassist/lock` names the holder (user, pid, host, when).

The lock file is created with its content in one step (a temporary file hard-linked into place), so
it is never seen half-written. A lock whose process is gone on this host is stale and taken over
(said in the log); a lock held on another host, or by a live process, refuses with `ProjectLockedError`.
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

log = logging.getLogger(__name__)

LOCK_NAME = "lock"
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
                         "Open it read-only, or close the other window first.")
        self.info = info


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    except OSError:
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
    def acquire(cls, folder: str | Path) -> ProjectLock:
        """Take the folder's lock; `ProjectLockedError` when a live holder has it."""
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
                if other is not None and not _stale(other):
                    raise ProjectLockedError(folder, other) from None
                log.warning("%s: taking over a stale lock (%s)", folder,
                            other.describe() if other else "unreadable")
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
    """The lock file's holder, None when it is missing or unreadable."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return LockInfo(str(doc["holder"]), int(doc["pid"]), str(doc["host"]), str(doc["created"]),
                        str(doc["instance"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _stale(info: LockInfo) -> bool:
    if info.host != socket.gethostname():
        return False  # cannot tell from here
    if info.pid == os.getpid():
        with _GUARD:
            return info.instance not in _HELD
    return not _alive(info.pid)
