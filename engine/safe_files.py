"""Reading files that someone else may have put there: regular files only, never more than a limit.

A FIFO, a device (`/dev/zero`), a socket or a folder where a file is expected is refused at once,
without blocking on it; a symlink to a regular file is followed. A file larger than the limit is
refused from its size before anything is read.
"""

from __future__ import annotations

import errno
import io
import math
import os
import stat
import zipfile
import zlib
from pathlib import Path

import numpy as np

DEFAULT_MAX_FILE_BYTES = 2 << 30  # 2 GiB: a COCO file of the largest public data sets is under a gigabyte

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


class NotARegularFileError(OSError):
    """The path is a FIFO, device, socket or folder, not a regular file."""


class FileTooLargeError(OSError):
    """The file is larger than the limit for its kind."""


def max_file_bytes() -> int:
    """The largest label or project file read: SEGASSIST_MAX_FILE_BYTES, else 2 GiB."""
    try:
        return max(1, int(os.environ.get("SEGASSIST_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES)))
    except ValueError:
        return DEFAULT_MAX_FILE_BYTES


def kind_of(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular(path: str | Path, max_bytes: int | None = None) -> bytes:
    """The bytes of the regular file at `path` (symlinks followed), at most `max_bytes` (default
    `max_file_bytes()`). Raises `NotARegularFileError`, `FileTooLargeError` or the OSError of the read,
    each naming the file."""
    path = Path(path)
    limit = max_file_bytes() if max_bytes is None else max_bytes
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFileError(errno.EINVAL, f"{kind_of(st.st_mode)}, not a regular file", str(path))
        if st.st_size > limit:
            raise FileTooLargeError(errno.EFBIG, f"{st.st_size:,} bytes, over the limit of {limit:,}", str(path))
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 24, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew while being read
                raise FileTooLargeError(errno.EFBIG, f"over the limit of {limit:,} bytes", str(path))
        return b"".join(chunks)
    finally:
        os.close(fd)


def is_regular(path: str | Path) -> bool:
    """Whether `path` is (a symlink to) a regular file; never blocks."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


class ArchiveError(ValueError):
    """An `.npz` file that is not what SegAssist writes there (the message names the file)."""


def read_npz(path: str | Path, *, max_bytes: int, names: set[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an `.npz` file, every size checked before it is decompressed or allocated.

    The file must be regular and at most `max_bytes`; its arrays together at most `max_bytes` as declared
    by their `.npy` headers (a deflate bomb is never inflated); no object arrays (no pickle); with `names`,
    no member outside them. Raises `ArchiveError` naming the file, or the OSError of the read."""
    path = Path(path)
    data = read_regular(path, max_bytes)
    out: dict[str, np.ndarray] = {}
    budget = max_bytes
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                name = info.filename.removesuffix(".npy")
                if not info.filename.endswith(".npy") or (names is not None and name not in names) or name in out:
                    raise ArchiveError(f"{path}: unexpected member {info.filename!r}")
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise ArchiveError(f"{path}: {info.filename} has npy version {version}")
                    if dtype.hasobject:
                        raise ArchiveError(f"{path}: {info.filename} holds Python objects")
                    nbytes = math.prod(shape) * dtype.itemsize
                    if nbytes > budget or nbytes > info.file_size:
                        raise ArchiveError(f"{path}: {info.filename} declares {nbytes:,} bytes, more than it may hold")
                    budget -= nbytes
                with z.open(info) as f:
                    out[name] = np.lib.format.read_array(f, allow_pickle=False)
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, ValueError, EOFError, OverflowError, TypeError, KeyError, RuntimeError,
            NotImplementedError, zlib.error, OSError) as exc:
        raise ArchiveError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from exc
    return out
