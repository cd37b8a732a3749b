"""An export as one change to its destination: written into a hidden folder, then moved into place.

`staged_folder(out)` gives a fresh folder inside `out` (same file system, so moving is a rename) and
removes it, with whatever is in it, when the block ends; the folders it had to create for `out` go
again when the block fails. `commit_staged` moves every staged file to its place in `out`: a file it
replaces is kept (hard-linked, or renamed where links are not possible) until every file is in place,
and put back if any move fails. So an export that fails while writing (a full disk, a cancel, a bad
image) or while moving leaves the destination as it was, and one that succeeds replaces what an
earlier export left there file by file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from engine.atomic import fsync_dir
from labelformats.base import FormatError

STAGE_PREFIX = ".segassist-export-"


def real_path(path: str | Path) -> Path:
    """Where a write to `path` lands: its folder's real path (symlinks resolved) and its own name (a
    replace swaps a symlink itself, never what it points to)."""
    path = Path(os.path.abspath(path))
    return Path(os.path.realpath(path.parent)) / path.name


@contextlib.contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    out = Path(out)
    missing = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot create the export folder ({exc.strerror or exc})", str(out)) from exc
    if not out.is_dir():
        raise FormatError(f"{out}: not a folder")
    stage = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=out))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for folder in missing:  # deepest first: only what this export created, and only when empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    shutil.rmtree(stage, ignore_errors=True)


def commit_staged(stage: Path, out: Path, protected: Iterable[Path] = ()) -> list[Path]:
    """Move every file under `stage` to the same place under `out`; all or nothing (see the module).

    Raises `FormatError` before anything moves when a file would land on a path in `protected` (real
    paths: the images being exported) or where a folder is. Returns the files now in `out`."""
    protected = set(protected)
    files = sorted(p for p in stage.rglob("*") if p.is_file() and not p.is_symlink())
    moves = []
    for src in files:
        dst = out / src.relative_to(stage)
        if real_path(dst) in protected:
            raise FormatError(f"{dst}: the export would write over this image; choose a folder without the images")
        if dst.is_dir() and not dst.is_symlink():
            raise FormatError(f"{dst}: a folder is in the way of an exported file")
        moves.append((src, dst))
    keep = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX + "old-", dir=out))
    done: list[tuple[Path, Path | None]] = []
    made: list[Path] = []
    try:
        for n, (src, dst) in enumerate(moves):
            for folder in reversed([p for p in dst.parents if p != out and out in p.parents and not p.exists()]):
                folder.mkdir()
                made.append(folder)
            old = None
            if os.path.lexists(dst):
                old = keep / str(n)
                try:
                    os.link(dst, old, follow_symlinks=False)
                except OSError:
                    os.rename(dst, old)  # no hard links here: the old file waits beside, put back on failure
            done.append((dst, old))
            os.replace(src, dst)
        for folder in {dst.parent for _, dst in moves}:
            fsync_dir(folder)
    except BaseException:
        for dst, old in reversed(done):
            with contextlib.suppress(OSError):
                if old is not None:
                    os.replace(old, dst)
                elif os.path.lexists(dst):
                    dst.unlink()
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    finally:
        shutil.rmtree(keep, ignore_errors=True)
    return [dst for _, dst in moves]
