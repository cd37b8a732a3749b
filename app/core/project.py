"""A project folder: the person's images, `segassist.json`, `labels/`, `models/`, and SegAssist's caches.

    <folder>/
      segassist.json                 classes, settings, image statuses and mean entropies, model history
      <images>                       the person's images, never modified or moved
      labels/<stem>.png              human labels (palette PNG, class index per pixel, 255 = not labelled)
      models/<name>.safetensors      model versions
      .segassist/predictions/<stem>.npz   cached model proposals
      .segassist/journal/<stem>.journal   edits not yet saved (recovery after a crash)

Labels are named by the image's stem. When two images share a stem (`a.jpg`, `a.png`), the first
in file-name order owns it and the others are listed with an error asking for a rename.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from app.core.document import LabelDocument
from app.core.journal import Journal, JournalError
from app.core.loop_record import Correction, LoopRecord, correction
from app.core.predictions import PredictionFileError, read_prediction, write_prediction
from app.core.project_lock import ProjectLock
from engine.atomic import atomic_write_bytes, fsync_dir
from engine.classes import SegClass, as_classes, default_color
from engine.images import ImageReadError, image_size, list_images, read_image, read_label, write_label

log = logging.getLogger(__name__)

PROJECT_FILE = "segassist.json"
FORMAT = "segassist-project"
FORMAT_VERSION = 1
STATUSES = ("unlabelled", "predicted", "edited", "reviewed")
DEFAULT_CLASSES = ("background", "object")
MAX_CLASSES = 255  # 255 is "not labelled"


class ProjectFileError(ValueError):
    """A `segassist.json` that cannot be used; the message names the file and the problem."""


class ChangedOnDiskError(OSError):
    """A label or project file changed on disk since it was read; saving would overwrite that change."""

    def __init__(self, path: Path):
        super().__init__(errno.EEXIST, f"{path} changed on disk since it was read (by another window or "
                         "program); saving now would overwrite that change", str(path))

    def __str__(self) -> str:
        return self.strerror


class ProjectFileWriteError(OSError):
    """`segassist.json` could not be written (the labels saved with it are on disk all the same)."""


@dataclass
class ImageEntry:
    """One image of the project, as the image list shows it."""

    path: Path
    stem: str
    status: str = "unlabelled"
    error: str | None = None  # why the image cannot be used; None when it can
    mean_entropy: float | None = None  # of the cached proposal
    size: tuple[int, int] | None = None  # (height, width), from the file's header
    note: str | None = None  # something the person should hear about (recovered edits)

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class ModelVersion:
    """One model file of the project's history."""

    path: Path
    name: str
    created: str
    arch: str
    backbone: str
    miou: float | None = None
    parent: str | None = None
    val_images: int | None = None  # how many validation images `miou` was measured on

    def to_json(self, folder: Path) -> dict:
        return {"path": _rel(self.path, folder), "name": self.name, "created": self.created, "arch": self.arch,
                "backbone": self.backbone, "miou": self.miou, "parent": self.parent, "val_images": self.val_images}


@dataclass
class PendingSave:
    """A label save prepared on the GUI thread: `write()` anywhere, then `Project.finish_save`."""

    entry: ImageEntry
    doc: LabelDocument
    path: Path
    labels: np.ndarray
    classes: list[SegClass]
    state: int
    revision: int
    expected: object = None  # the file's signature when it was read (_UNSEEN: not read, not checked)
    force: bool = False  # the person chose to overwrite what changed on disk
    written: object = None

    def write(self) -> Path:
        """Write the labels atomically; raises OSError on failure (nothing else changes), and
        `ChangedOnDiskError` when the file changed since it was read (unless prepared with force)."""
        if self.expected is not _UNSEEN and signature(self.path) != self.expected:
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


_UNSEEN = object()


def signature(path: Path) -> tuple[int, int, int] | None:
    """What tells a file changed: (mtime in ns, size, inode); None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class Project:
    """A folder of images under annotation, and everything SegAssist keeps beside them."""

    def __init__(self, folder: Path, classes: list[SegClass], settings: dict, images: list[ImageEntry],
                 models: list[ModelVersion], current_model: Path | None):
        self.folder = folder
        self.classes = classes
        self.settings = settings
        self.images = images
        self.models = models
        self.current_model = current_model
        self.write_folder: Path | None = None  # where labels, journal and project file go after `redirect`
        self.read_only: str | None = None  # why nothing may be written here (another window holds the lock)
        self.lock: ProjectLock | None = None
        self.journal = Journal(folder / ".segassist" / "journal")
        self._seen: dict[Path, object] = {}  # file -> its signature when last read or written
        self.note: str | None = None  # what opening cleaned up, for the person
        self.notices: list[str] = []  # what happened while the project was closed (said when it opens next)
        self.loop = LoopRecord()  # validation set and correction records
        # Bookkeeping (statuses derived from files, proposal scores) need not reach segassist.json at once:
        # with `deferred_save` set (the app's debounced saver), `touch()` marks the file dirty and calls it.
        self.deferred_save: Callable[[], None] | None = None
        self.dirty = False
        self._generation = 0  # of the last snapshot taken
        self._written = 0  # of the last snapshot on disk
        self._write_lock = threading.Lock()

    # ---- opening -------------------------------------------------------------------------------------

    @classmethod
    def open(cls, folder: str | Path, classes=None, *, start_fresh: bool = False, read_only: bool = False) -> Project:
        """Open a folder of images; creates `segassist.json` and `labels/` when missing.

        `classes` (names or `SegClass`es) are used only when the project is new. A corrupt or
        hand-broken `segassist.json` raises `ProjectFileError` naming it; with `start_fresh=True`
        it is renamed to `segassist.json.broken-<time>` (kept) and a new project is started.
        The project's lock is taken (`ProjectLockedError` when another window holds it; `close`
        gives it back); with `read_only=True` no lock is taken and nothing is ever written.
        """
        folder = Path(folder).expanduser().resolve()
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder")
        if read_only:
            return cls._open(folder, classes, start_fresh=False, read_only=True)
        lock = ProjectLock.acquire(folder)
        try:
            project = cls._open(folder, classes, start_fresh=start_fresh, read_only=False)
        except BaseException:
            lock.release()
            raise
        project.lock = lock
        return project

    def close(self) -> None:
        """Give the project's lock back (the window closes or opens another folder)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    @classmethod
    def _open(cls, folder: Path, classes, *, start_fresh: bool, read_only: bool) -> Project:
        path = folder / PROJECT_FILE
        doc = None
        project = None
        if path.exists():
            try:
                doc = _read_project_file(path)
                project = cls._from_json(folder, path, doc)
            except ProjectFileError:
                if not start_fresh or read_only:
                    raise
                stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
                kept = path.with_name(f"{PROJECT_FILE}.broken-{stamp}")
                path.rename(kept)
                log.warning("%s: kept aside as %s; starting fresh with what could be read", path, kept.name)
                doc = _salvage(doc) if isinstance(doc, dict) else None
        if project is None:
            fresh = {"classes": [c.to_json() for c in as_classes(classes or DEFAULT_CLASSES)]}
            try:
                project = cls._from_json(folder, path, doc if doc is not None else fresh)
            except ProjectFileError:
                project = cls._from_json(folder, path, fresh)
        project._seen[path] = signature(path)
        if read_only:
            project.read_only = "the project is open in another window, so this one only reads it"
            project.journal = Journal(project.journal.folder, writable=False, read_only_reason=project.read_only)
            return project
        (folder / "labels").mkdir(exist_ok=True)
        project.note = project._clean_leftovers()
        if not path.exists():
            project.save()
        return project

    def _clean_leftovers(self) -> str | None:
        """Remove what interrupted writes left (`labels/.*.tmp`, `models/*.ckpt/`); keep an interrupted
        training's best model as `<name>-interrupted.safetensors`. Returns a note for the person, or None."""
        import shutil

        said = []
        tmps = [p for p in self.labels_dir.glob(".*.tmp") if p.is_file()] if self.labels_dir.is_dir() else []
        for p in tmps:
            p.unlink(missing_ok=True)
        if tmps:
            said.append(f"removed {len(tmps)} unfinished label write(s) from labels/ (the saved labels are intact)")
        if self.models_dir.is_dir():
            ckpts = [p for p in self.models_dir.glob("*.ckpt") if p.is_dir()]
            for p in ckpts:
                shutil.rmtree(p, ignore_errors=True)
            if ckpts:
                said.append(f"removed the checkpoints of {len(ckpts)} interrupted training run(s)")
            for best in self.models_dir.glob("*.best.safetensors"):
                final = best.with_name(best.name.removesuffix(".best.safetensors") + ".safetensors")
                if final.exists():
                    best.unlink(missing_ok=True)
                    continue
                kept = final.with_name(final.stem + "-interrupted.safetensors")
                os.replace(best, kept)
                said.append(f"kept the best model of an interrupted training as models/{kept.name}")
        if not said:
            return None
        note = "; ".join(said)
        log.info("%s: %s", self.folder, note)
        return note[0].upper() + note[1:]

    @classmethod
    def _from_json(cls, folder: Path, path: Path, doc: dict) -> Project:
        try:
            classes = as_classes(_field(doc, "classes", list, "a list of classes") or DEFAULT_CLASSES)
            settings = dict(_field(doc, "settings", dict, "an object") or {})
            images_json = _field(doc, "images", dict, "an object keyed by file name") or {}
            models = [_model_from_json(folder, m) for m in _field(doc, "models", list, "a list") or []]
            current = _field(doc, "current_model", str, "a path")
            current_model = None if current is None else folder / current
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise ProjectFileError(f"{path}: {exc}") from exc
        if len(classes) > MAX_CLASSES:
            raise ProjectFileError(f"{path}: {len(classes)} classes; at most {MAX_CLASSES} are possible")
        project = cls(folder, classes, settings, [], models, current_model)
        notices = doc.get("notices") or []
        if not isinstance(notices, list) or not all(isinstance(n, str) for n in notices):
            raise ProjectFileError(f"{path}: 'notices' must be a list of texts")
        project.notices = list(notices)
        project.loop = _loop_from_json(path, doc)
        project.images = project._scan(path, images_json)
        return project

    def _scan(self, path: Path, images_json: dict) -> list[ImageEntry]:
        entries: list[ImageEntry] = []
        owners: dict[str, ImageEntry] = {}
        for image_path in list_images(self.folder):
            entry = ImageEntry(image_path, image_path.stem)
            saved = images_json.get(image_path.name) or {}
            if not isinstance(saved, dict):
                raise ProjectFileError(f"{path}: images[{image_path.name!r}] must be an object")
            status = saved.get("status")
            if status is not None and status not in STATUSES:
                raise ProjectFileError(f"{path}: images[{image_path.name!r}]: unknown status {status!r} "
                                       f"(expected one of {', '.join(STATUSES)})")
            entropy = saved.get("mean_entropy")
            if entropy is not None and not (isinstance(entropy, int | float) and math.isfinite(entropy)):
                raise ProjectFileError(f"{path}: images[{image_path.name!r}]: mean_entropy must be a number")
            entry.mean_entropy = None if entropy is None else float(entropy)
            if entry.stem in owners:
                entry.error = (f"has the same name stem as {owners[entry.stem].name}, so both would share "
                               f"labels/{entry.stem}.png; rename one of them")
            else:
                owners[entry.stem] = entry
                try:
                    entry.size = image_size(image_path)
                except ImageReadError as exc:
                    entry.error = _reason(exc, image_path)
                except MemoryError:
                    entry.error = "not enough memory to read this image"
                except Exception as exc:  # noqa: BLE001 - one bad image never makes the project unopenable
                    entry.error = f"not a readable image ({type(exc).__name__}: {exc})"
            entry.status = self._status_on_disk(entry, status)
            entries.append(entry)
        return entries

    def _status_on_disk(self, entry: ImageEntry, status: str | None) -> str:
        """The saved status, corrected by what is on disk (a label file deleted or added by hand)."""
        has_labels = self.label_path(entry).exists() and entry.error is None
        if has_labels:
            return status if status in ("edited", "reviewed") else "edited"
        if self.prediction_path(entry).exists():
            return "predicted"
        return "unlabelled"

    # ---- paths ---------------------------------------------------------------------------------------

    @property
    def project_file(self) -> Path:
        return (self.write_folder or self.folder) / PROJECT_FILE

    @property
    def labels_dir(self) -> Path:
        return self.folder / "labels"

    @property
    def models_dir(self) -> Path:
        return self.folder / "models"

    def label_path(self, entry: ImageEntry) -> Path:
        """Where the image's labels are read from (after `redirect`: the new folder's once saved there)."""
        if self.write_folder is not None:
            moved = self.write_folder / "labels" / f"{entry.stem}.png"
            original = self.labels_dir / f"{entry.stem}.png"
            return moved if moved.exists() or not original.exists() else original
        return self.labels_dir / f"{entry.stem}.png"

    def label_target(self, entry: ImageEntry) -> Path:
        """Where the image's labels are written."""
        return (self.write_folder or self.folder) / "labels" / f"{entry.stem}.png"

    def redirect(self, folder: str | Path) -> None:
        """Write labels, the recovery journal and segassist.json into `folder` from now on (the images and
        the labels saved so far are read where they are). Raises OSError when `folder` cannot be written."""
        folder = Path(folder).expanduser().resolve()
        (folder / "labels").mkdir(parents=True, exist_ok=True)
        probe = folder / "labels" / ".segassist-write-test"
        probe.write_bytes(b"")
        probe.unlink()
        self.write_folder = folder
        self.journal.relocate(folder / ".segassist" / "journal")
        log.info("%s: labels, journal and project file are written to %s from now on", self.folder, folder)

    def prediction_path(self, entry: ImageEntry) -> Path:
        return self.folder / ".segassist" / "predictions" / f"{entry.stem}.npz"

    def entry(self, name: str) -> ImageEntry:
        """The image entry with this file name (or stem)."""
        for e in self.images:
            if e.name == name:
                return e
        for e in self.images:
            if e.stem == name and e.error is None:
                return e
        raise KeyError(f"{self.folder}: no image named {name!r}")

    def labelled(self) -> list[ImageEntry]:
        """Images with a label file (edited or reviewed), the training set."""
        return [e for e in self.images if e.error is None and e.status in ("edited", "reviewed")]

    # ---- documents -----------------------------------------------------------------------------------

    def load_document(self, entry: ImageEntry) -> LabelDocument:
        """The image with its saved labels, cached proposal and journal replayed; edits are journaled.

        Raises `ImageReadError` naming the file when the image (entry.error is set) or its label file
        cannot be used. A journal that does not fit is set aside (kept) and said in `entry.note`.
        """
        if entry.error is not None:
            raise ImageReadError(f"{entry.path}: {entry.error}")
        try:
            image = read_image(entry.path)
        except ImageReadError as exc:
            entry.error = _reason(exc, entry.path)
            raise
        entry.size = image.shape[:2]
        labels = None
        label_path = self.label_path(entry)
        seen = signature(label_path)
        self._seen[label_path] = seen
        if seen is not None:
            labels = read_label(label_path, len(self.classes))
            if labels.shape != image.shape[:2]:
                raise ImageReadError(f"{label_path}: labels of {labels.shape[0]}x{labels.shape[1]} pixels for "
                                     f"an image of {image.shape[0]}x{image.shape[1]} ({entry.path.name})")
        doc = LabelDocument(image, labels, num_classes=len(self.classes))
        cached = self._read_cached(entry, doc.shape)
        if cached is not None:
            doc.set_proposal(cached.labels, cached.confidence, cached.entropy)
        entry.note = None
        try:
            replayed = self.journal.restore(entry.stem, doc)
        except JournalError as exc:
            kept = self.journal.set_aside(entry.stem, str(exc))
            entry.note = f"unsaved edits from an earlier session could not be restored ({exc}); kept in {kept}"
            doc = LabelDocument(image, labels, num_classes=len(self.classes))
            if cached is not None:
                doc.set_proposal(cached.labels, cached.confidence, cached.entropy)
        else:
            if replayed:
                entry.note = f"restored {replayed} unsaved edit{'s' if replayed != 1 else ''} from an earlier session"
        self.journal.attach(entry.stem, doc)
        return doc

    def save_document(self, entry: ImageEntry, doc: LabelDocument, *, force: bool = False) -> None:
        """Write the labels atomically, then mark them saved and clear the journal.

        Raises OSError when the write fails; the document stays dirty and the journal keeps the edits.
        A label file that changed on disk since it was read raises `ChangedOnDiskError` unless `force`.
        """
        pending = self.begin_save(entry, doc, copy=False, force=force)
        pending.write()
        self.finish_save(pending)

    def begin_save(self, entry: ImageEntry, doc: LabelDocument, *, copy: bool = True,
                   force: bool = False) -> PendingSave:
        """Prepare a save of the labels as they are now (a copy, so painting may go on meanwhile)."""
        self._check_writable()
        if doc.in_stroke:
            doc.end_stroke()
        labels = doc.labels.copy() if copy else doc.labels
        path = self.label_target(entry)
        expected = _UNSEEN if force else self._seen.get(path, _UNSEEN)
        return PendingSave(entry, doc, path, labels, list(self.classes), doc.state, doc.revision, expected, force)

    def _check_writable(self) -> None:
        if self.read_only and self.write_folder is None:
            raise OSError(errno.EROFS, self.read_only, str(self.folder))

    def finish_save(self, pending: PendingSave) -> None:
        """After `pending.write()` succeeded: the document is saved as of then, journal cleared up to it.

        Raises `ProjectFileWriteError` when segassist.json cannot be written (the labels are saved)."""
        self._seen[pending.path] = pending.written
        pending.doc.mark_saved(pending.state)
        try:
            self.journal.clear(pending.entry.stem, upto=pending.revision)
        except OSError as exc:  # the labels are safe; stale records only replay the same values
            log.warning("%s: journal not cleared after a save (%s)", self.journal.path(pending.entry.stem), exc)
        if pending.written is None:  # no label left: the status the files imply (see _status_on_disk)
            pending.entry.status = "predicted" if self.prediction_path(pending.entry).exists() else "unlabelled"
        elif pending.entry.status in ("unlabelled", "predicted"):
            pending.entry.status = "edited"  # what the label file on disk says anyway (see _status_on_disk)
        try:
            if self.deferred_save is None:
                self.save(force=pending.force)
            else:
                self.touch()
        except OSError as exc:
            raise ProjectFileWriteError(exc.errno, exc.strerror or str(exc), exc.filename) from exc

    def pending_recovery(self) -> list[ImageEntry]:
        """Images with edits in the journal that no save has cleared (restored when loaded)."""
        stems = set(self.journal.stems())
        return [e for e in self.images if e.stem in stems and e.error is None]

    # ---- proposals -----------------------------------------------------------------------------------

    def save_prediction(self, entry: ImageEntry, labels: np.ndarray, confidence: np.ndarray | None = None,
                        entropy: np.ndarray | None = None, *, model: str | None = None) -> None:
        """Cache a model proposal for the image, note its mean entropy, mark it predicted if unlabelled."""
        self.record_prediction(entry, self.write_prediction(entry, labels, confidence, entropy, model=model))

    def write_prediction(self, entry: ImageEntry, labels: np.ndarray, confidence: np.ndarray | None = None,
                         entropy: np.ndarray | None = None, *, model: str | None = None) -> float | None:
        """The file half of `save_prediction` (safe on a worker thread); returns the mean entropy."""
        return write_prediction(self.prediction_path(entry), labels, confidence, entropy, model=model)

    def record_prediction(self, entry: ImageEntry, mean_entropy: float | None) -> None:
        """The bookkeeping half of `save_prediction` (on the GUI thread)."""
        entry.mean_entropy = mean_entropy
        if entry.status == "unlabelled":
            entry.status = "predicted"
        self.touch()

    def _read_cached(self, entry: ImageEntry, shape: tuple[int, int]):
        path = self.prediction_path(entry)
        if not path.exists():
            return None
        try:
            cached = read_prediction(path)
        except PredictionFileError:
            return None  # a cache: a broken one is as good as none
        if cached.labels.shape != shape or (cached.labels[cached.labels != 255] >= len(self.classes)).any():
            return None
        return cached

    # ---- statuses and ordering -----------------------------------------------------------------------

    def set_status(self, entry: ImageEntry, status: str, *, durable: bool = True) -> None:
        """Set an image's status; saved at once, or with `durable=False` (a status the files on disk imply
        anyway, such as "edited") whenever the deferred saver gets to it."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        entry.status = status
        if durable:
            self.save()
        else:
            self.touch()

    def most_uncertain(self, entries: list[ImageEntry] | None = None) -> list[ImageEntry]:
        """Usable images by mean proposal entropy, most uncertain first; those without a proposal last."""
        pool = [e for e in (self.images if entries is None else entries) if e.error is None]
        scored = sorted((e for e in pool if e.mean_entropy is not None), key=lambda e: -e.mean_entropy)
        return scored + [e for e in pool if e.mean_entropy is None]

    # ---- classes -------------------------------------------------------------------------------------

    def add_class(self, name: str, color: tuple[int, int, int] | None = None) -> SegClass:
        """Append a class (its index is the next one); saved at once."""
        if len(self.classes) >= MAX_CLASSES:
            raise ValueError(f"at most {MAX_CLASSES} classes are possible")
        new = SegClass(name, tuple(color) if color is not None else default_color(len(self.classes)))
        self.classes = as_classes([*self.classes, new])
        self.save()
        return self.classes[-1]

    def rename_class(self, index: int, name: str) -> None:
        classes = list(self.classes)
        classes[index] = SegClass(name, classes[index].color)
        self.classes = as_classes(classes)
        self.save()

    def recolor_class(self, index: int, color: tuple[int, int, int]) -> None:
        classes = list(self.classes)
        classes[index] = SegClass(classes[index].name, tuple(color))
        self.classes = as_classes([c.to_json() for c in classes])  # checks the colour
        self.save()

    # ---- models --------------------------------------------------------------------------------------

    def add_model_version(self, path: str | Path, *, select: bool = True, **info) -> ModelVersion:
        """Register a model file (read from its metadata unless given: arch, backbone, miou, parent).

        A path already registered is updated. With `select`, it becomes the current model. Saved at once.
        """
        path = Path(path).expanduser().resolve()
        meta = {}
        if not {"arch", "backbone"} <= info.keys():
            from engine.model_file import read_model_metadata  # torch loads only when a model is involved

            meta = read_model_metadata(path)
        config = meta.get("config", {})
        history = meta.get("history") or []
        last = history[-1] if history and isinstance(history[-1], dict) else {}
        version = ModelVersion(
            path=path,
            name=info.get("name") or path.stem,
            created=info.get("created") or datetime.now(UTC).isoformat(timespec="seconds"),
            arch=info.get("arch") or str(config.get("name", "")),
            backbone=info.get("backbone") or str(config.get("backbone", "")),
            miou=info.get("miou", recorded_miou(last)),
            parent=info.get("parent", meta.get("parent")),
            val_images=info.get("val_images", last.get("val_images") if recorded_miou(last) is not None else None),
        )
        self.models = [m for m in self.models if m.path != path] + [version]
        if select:
            self.current_model = path
        self.save()
        return version

    def add_notice(self, text: str) -> None:
        """Something the person should hear the next time this project opens; saved at once."""
        self.notices.append(text)
        self.save()

    def take_notices(self) -> list[str]:
        """The notices kept for the person, forgotten once read; a read-only window leaves them for the
        window that can write the project."""
        if self.read_only and self.write_folder is None:
            return list(self.notices)
        notices, self.notices = self.notices, []
        if notices:
            self.touch()
        return notices

    def set_current_model(self, path: str | Path | None) -> None:
        self.current_model = None if path is None else Path(path).expanduser().resolve()
        self.save()

    def next_model_path(self, arch: str) -> Path:
        """A new file name under models/ for a version of `arch` (`<arch>-v<N>.safetensors`)."""
        taken = {p.name for p in self.models_dir.glob("*")} | {m.path.name for m in self.models}
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", arch) or "model"
        n = 1
        while f"{safe}-v{n}.safetensors" in taken:
            n += 1
        return self.models_dir / f"{safe}-v{n}.safetensors"

    # ---- validation set and correction records ---------------------------------------------------------

    def validation_names(self) -> list[str]:
        """The validation set, grown from the reviewed images as far as it may (saved when it changed)."""
        before = list(self.loop.validation)
        reviewed = [e.name for e in self.labelled() if e.status == "reviewed"]
        names = self.loop.update_validation(reviewed, [e.name for e in self.labelled()])
        if names != before:
            self.save()
        return names

    def run_validation_names(self) -> list[str]:
        """The validation images of a training run now (empty while fewer than 2 are available)."""
        self.validation_names()
        return self.loop.run_names([e.name for e in self.labelled()])

    def set_validation_member(self, entry: ImageEntry, member: bool) -> None:
        """The person puts `entry` into the validation set, or takes it out; saved at once."""
        self.loop.set_member(entry.name, member)
        self.save()

    def is_validation(self, entry: ImageEntry) -> bool:
        return entry.name in self.loop.validation

    def proposal_model(self, entry: ImageEntry) -> str | None:
        """The model file name the cached proposal of `entry` came from (None: none, or not recorded)."""
        path = self.prediction_path(entry)
        if not path.exists():
            return None
        try:
            return read_prediction(path).model
        except PredictionFileError:
            return None

    def record_review(self, entry: ImageEntry, doc: LabelDocument, seconds: float = 0.0) -> Correction:
        """Mark `entry` reviewed and record what the person changed in its proposal (pixels, regions) and
        the time spent on it (`seconds` more than recorded so far); saved at once."""
        self.loop.add_seconds(entry.name, seconds)
        record = correction(doc.labels, doc.proposal, model=self.proposal_model(entry),
                            seconds=self.loop.seconds.get(entry.name, 0.0))
        self.loop.corrections[entry.name] = record
        entry.status = "reviewed"
        self.save()
        return record

    # ---- saving --------------------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "classes": [c.to_json() for c in self.classes],
            "settings": self.settings,
            "images": {e.name: {"status": e.status, "mean_entropy": e.mean_entropy} for e in self.images},
            "models": [m.to_json(self.folder) for m in self.models],
            "current_model": None if self.current_model is None else _rel(self.current_model, self.folder),
            "loop": self.loop.to_json(),
            **({"notices": list(self.notices)} if self.notices else {}),
        }

    def save(self, *, force: bool = False) -> None:
        """Write `segassist.json` atomically, now. Raises `ChangedOnDiskError` when the file changed on
        disk since it was read or written here (unless `force`), OSError when it cannot be written."""
        self.write_snapshot(*self.snapshot(), force=force)

    def touch(self) -> None:
        """Bookkeeping changed: saved now, or marked dirty and handed to `deferred_save` when one is set."""
        if self.deferred_save is None:
            self.save()
        else:
            self.dirty = True
            self.deferred_save()

    def snapshot(self) -> tuple[int, bytes]:
        """The project file's content as of now (on the thread that changes the project), numbered."""
        self._generation += 1
        self.dirty = False
        text = json.dumps(self.to_json(), indent=2, ensure_ascii=False)
        return self._generation, (text + "\n").encode("utf-8")

    def write_snapshot(self, generation: int, data: bytes, *, force: bool = False) -> bool:
        """Write a snapshot (from any thread); one older than the file on disk is dropped. Raises OSError,
        and `ChangedOnDiskError` when the file changed on disk since it was read or written here."""
        self._check_writable()
        with self._write_lock:
            if generation < self._written:
                return False
            path = self.project_file
            if not force and path in self._seen and signature(path) != self._seen[path]:
                raise ChangedOnDiskError(path)
            atomic_write_bytes(path, data)
            self._seen[path] = signature(path)
            self._written = generation
            return True


def _read_project_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProjectFileError(f"{path}: not a text file ({exc})") from exc
    except OSError as exc:
        raise ProjectFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProjectFileError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    if not isinstance(doc, dict):
        raise ProjectFileError(f"{path}: expected a JSON object, found {type(doc).__name__}")
    if not _valid_text(doc):
        raise ProjectFileError(f"{path}: holds text that is not valid Unicode (a lone surrogate escape)")
    if doc.get("format", FORMAT) != FORMAT:
        raise ProjectFileError(f"{path}: not a SegAssist project file (format {doc.get('format')!r})")
    version = doc.get("version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ProjectFileError(f"{path}: written by a newer SegAssist (version {version!r}); update SegAssist")
    return doc


def _valid_text(obj: object) -> bool:
    """Whether `obj` can be written back as UTF-8 JSON (no lone surrogates)."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, TypeError, RecursionError):
        return False
    return True


def _salvage(doc: dict) -> dict:
    """What of a broken project file can be kept: each field that is usable on its own."""
    doc = {k: v for k, v in doc.items() if _valid_text(v)}
    out: dict = {}
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        out["classes"] = [c.to_json() for c in as_classes(doc.get("classes"))][:MAX_CLASSES] or None
    if isinstance(doc.get("settings"), dict):
        out["settings"] = doc["settings"]
    images = doc.get("images")
    if isinstance(images, dict):
        kept = {}
        for name, info in images.items():
            if isinstance(name, str) and isinstance(info, dict):
                status = info.get("status") if info.get("status") in STATUSES else None
                entropy = info.get("mean_entropy")
                ok = isinstance(entropy, int | float) and not isinstance(entropy, bool) and math.isfinite(entropy)
                kept[name] = {"status": status, "mean_entropy": entropy if ok else None}
        out["images"] = kept
    models = doc.get("models")
    if isinstance(models, list):
        out["models"] = [m for m in models if _usable_model(m)]
    return {k: v for k, v in out.items() if v is not None}


def _usable_model(m: object) -> bool:
    try:
        _model_from_json(Path("."), m)
    except (ValueError, TypeError):
        return False
    return True


def _field(doc: dict, key: str, kind: type, what: str):
    """`doc[key]` when present and of type `kind`, None when absent or null."""
    value = doc.get(key)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"{key!r} must be {what}, found {type(value).__name__}")
    return value


def _model_from_json(folder: Path, m: dict) -> ModelVersion:
    if not isinstance(m, dict) or not isinstance(m.get("path"), str):
        raise ValueError(f"a model entry needs a 'path': {m!r}")
    miou, count = m.get("miou"), m.get("val_images")
    return ModelVersion(folder / m["path"], str(m.get("name") or Path(m["path"]).stem), str(m.get("created", "")),
                        str(m.get("arch", "")), str(m.get("backbone", "")),
                        None if miou is None else float(miou), m.get("parent"), None if count is None else int(count))


def recorded_miou(record: dict) -> float | None:
    """The score a training record gives its model: the written model's (`miou`), or for records of
    earlier versions the last validation's; never the best during the run (another model)."""
    if "miou" in record:
        return record["miou"]
    metrics = record.get("metrics")
    return metrics.get("miou") if isinstance(metrics, dict) else None


def _loop_from_json(path: Path, doc: dict) -> LoopRecord:
    try:
        return LoopRecord.from_json(doc.get("loop"))
    except ValueError as exc:
        raise ProjectFileError(f"{path}: {exc}") from exc


def _rel(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def _reason(exc: Exception, path: Path) -> str:
    """An error message without the leading file name (the list shows it already)."""
    text = str(exc)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text
