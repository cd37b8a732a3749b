"""A project's label files, `labels/<stem>.png`: where each is read and written, and writing one safely.

A label file is written atomically from a copy of the labels (`PendingSave.write`, on any thread), and
never over a file that changed on disk since this project read or wrote it (`ChangedOnDiskError`),
unless the person chose to overwrite it. After `redirect`, labels are written into another folder and
read from there once saved there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.editing.document import LabelDocument
from app.core.storage.file_signature import ChangedOnDiskError, signature
from engine.atomic import fsync_dir
from engine.classes import SegClass
from engine.images import ImageReadError, read_label, write_label

UNSEEN = object()  # a file not read here: not checked for changes


@dataclass
class PendingSave:
    """A label save prepared on the thread that edits: `write()` anywhere, then finish it on that thread."""

    entry: object  # the project's ImageEntry
    doc: LabelDocument
    path: Path
    labels: np.ndarray
    classes: list[SegClass]
    state: int
    revision: int
    expected: object = None  # the file's signature when it was read (UNSEEN: not read, not checked)
    force: bool = False  # the person chose to overwrite what changed on disk
    written: object = None

    def write(self) -> Path:
        """Write the labels atomically; raises OSError on failure (nothing else changes), and
        `ChangedOnDiskError` when the file changed since it was read (unless prepared with force)."""
        if self.expected is not UNSEEN and signature(self.path) != self.expected:
            raise ChangedOnDiskError(self.path)
        if not (self.labels != 255).any():  # nothing labelled (every stroke undone or erased): no label file
            if self.path.exists():
                self.path.unlink()
                fsync_dir(self.path.parent)
            self.written = None
            return self.path
        path = write_label(self.path, self.labels, self.classes)
        self.written = signature(path)
        return path


class LabelStore:
    """The label files of the project in `folder` (see the module docstring)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.write_folder: Path | None = None  # where labels are written after `redirect`
        self._seen: dict[Path, object] = {}  # file -> its signature when last read or written here

    @property
    def dir(self) -> Path:
        return self.folder / "labels"

    def path(self, stem: str) -> Path:
        """Where the labels of `stem` are read from (after `redirect`: the new folder's once saved there)."""
        if self.write_folder is not None:
            moved = self.write_folder / "labels" / f"{stem}.png"
            original = self.dir / f"{stem}.png"
            return moved if moved.exists() or not original.exists() else original
        return self.dir / f"{stem}.png"

    def target(self, stem: str) -> Path:
        """Where the labels of `stem` are written."""
        return (self.write_folder or self.folder) / "labels" / f"{stem}.png"

    def read(self, stem: str, shape: tuple[int, int], num_classes: int, image: str) -> np.ndarray | None:
        """The saved labels of `stem` (None when there are none), remembered as read; `ImageReadError`
        naming the file when they cannot be used for `image` of `shape`."""
        path = self.path(stem)
        seen = signature(path)
        self._seen[path] = seen
        if seen is None:
            return None
        labels = read_label(path, num_classes)
        if labels.shape != shape:
            raise ImageReadError(f"{path}: labels of {labels.shape[0]}x{labels.shape[1]} pixels for "
                                 f"an image of {shape[0]}x{shape[1]} ({image})")
        return labels

    def begin(self, entry, doc: LabelDocument, classes: list[SegClass], *, copy: bool = True,
              force: bool = False) -> PendingSave:
        """A save of `doc`'s labels as they are now (a copy, so painting may go on meanwhile)."""
        if doc.in_stroke:
            doc.end_stroke()
        labels = doc.labels.copy() if copy else doc.labels
        path = self.target(entry.stem)
        expected = UNSEEN if force else self._seen.get(path, UNSEEN)
        return PendingSave(entry, doc, path, labels, list(classes), doc.state, doc.revision, expected, force)

    def written(self, pending: PendingSave) -> None:
        """`pending.write()` succeeded: its file is as written here."""
        self._seen[pending.path] = pending.written

    def redirect(self, folder: Path) -> None:
        """Write labels into `folder/labels` from now on; OSError when it cannot be written."""
        (folder / "labels").mkdir(parents=True, exist_ok=True)
        probe = folder / "labels" / ".segassist-write-test"
        probe.write_bytes(b"")
        probe.unlink()
        self.write_folder = folder

    def remove_unfinished(self) -> int:
        """Remove what interrupted writes left (`labels/.*.tmp`); returns how many."""
        tmps = [p for p in self.dir.glob(".*.tmp") if p.is_file()] if self.dir.is_dir() else []
        for p in tmps:
            p.unlink(missing_ok=True)
        return len(tmps)
