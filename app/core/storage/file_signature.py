"""What tells that a file changed on disk since SegAssist read or wrote it (another window, another program)."""

from __future__ import annotations

import errno
import os
from pathlib import Path


class ChangedOnDiskError(OSError):
    """A label or project file changed on disk since it was read; saving would overwrite that change."""

    def __init__(self, path: Path):
        super().__init__(errno.EEXIST, f"{path} changed on disk since it was read (by another window or "
                         "program); saving now would overwrite that change", str(path))

    def __str__(self) -> str:
        return self.strerror


def signature(path: Path) -> tuple[int, int, int] | None:
    """What tells a file changed: (mtime in ns, size, inode); None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
