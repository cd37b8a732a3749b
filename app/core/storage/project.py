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

`Project` holds the folder and its entries; the project file's format is `project_file.py`, the label
files `label_store.py`, the model versions `model_versions.py`, and writing an edit (journal, label file,
project file, in that order) `saving.py`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from app.core.editing.document import LabelDocument
from app.core.loop.loop_record import Correction, LoopRecord, correction
from app.core.storage.file_signature import ChangedOnDiskError, signature
from app.core.storage.journal import Journal, JournalError
from app.core.storage.label_store import LabelStore, PendingSave
from app.core.storage.model_versions import ModelVersion, model_version, next_model_path, recorded_miou
from app.core.storage.predictions import PredictionFileError, read_prediction, write_prediction
from app.core.storage.project_file import (
    DEFAULT_CLASSES,
    FORMAT,
    FORMAT_VERSION,
    MAX_CLASSES,
    PROJECT_FILE,
    STATUSES,
    ProjectFileError,
    ProjectFileWriteError,
    ProjectFileWriter,
    image_record,
    parse,
    read_project_file,
    salvage,
    to_json,
)
from app.core.storage.project_lock import LockInfo, ProjectLock
from app.core.storage.saving import Saving
from engine.classes import SegClass, as_classes, default_color
from engine.images import ImageReadError, image_size, list_images, read_image

__all__ = [  # the names callers have always imported from here
    "DEFAULT_CLASSES", "FORMAT", "FORMAT_VERSION", "MAX_CLASSES", "PROJECT_FILE", "STATUSES", "ChangedOnDiskError",
    "ImageEntry", "ModelVersion", "PendingSave", "Project", "ProjectFileError", "ProjectFileWriteError",
    "recorded_miou", "signature",
]

log = logging.getLogger(__name__)

_UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)  # a folder a project opens read-only


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
        self.read_only: str | None = None  # why nothing may be written here (another window holds the lock)
        self.lock: ProjectLock | None = None
        self.journal = Journal(folder / ".segassist" / "journal")
        self.label_store = LabelStore(folder)
        self.project_writer = ProjectFileWriter()
        self.saving = Saving(self)  # the one owner of writing an edit: journal, label file, project file
        self.note: str | None = None  # what opening cleaned up, for the person
        self.notices: list[str] = []  # what happened while the project was closed (said when it opens next)
        self.loop = LoopRecord()  # validation set and correction records
        # Bookkeeping (statuses derived from files, proposal scores) need not reach segassist.json at once:
        # with `deferred_save` set (the app's debounced saver), `touch()` marks the file dirty and calls it.
        self.deferred_save: Callable[[], None] | None = None
        self.dirty = False

    # ---- opening -------------------------------------------------------------------------------------

    @classmethod
    def open(cls, folder: str | Path, classes=None, *, start_fresh: bool = False, read_only: bool = False,
             take_over: LockInfo | None = None) -> Project:
        """Open a folder of images; creates `segassist.json` and `labels/` when missing.

        `classes` (names or `SegClass`es) are used only when the project is new. A corrupt or
        hand-broken `segassist.json` raises `ProjectFileError` naming it; with `start_fresh=True`
        it is renamed to `segassist.json.broken-<time>` (kept) and a new project is started.
        The project's lock is taken (`ProjectLockedError` when another window holds it, unless
        `take_over` is the holder that error named; `close` gives it back); with `read_only=True` no
        lock is taken and nothing is ever written. A folder that cannot be written (permissions, a
        read-only disk) opens read-only, and `read_only` and `note` say why.
        """
        folder = Path(folder).expanduser().resolve()
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder")
        if read_only:
            return cls._open(folder, classes, start_fresh=False, read_only=True)
        try:
            lock = ProjectLock.acquire(folder, take_over=take_over)
        except OSError as exc:
            if exc.errno not in _UNWRITABLE:
                raise
            why = f"the folder cannot be written ({exc.strerror or exc})"
            project = cls._open(folder, classes, start_fresh=False, read_only=True,
                                reason=f"{why}, so this window only reads it")
            project.note = f"Opened read-only: {why}; edits can be saved to another folder"
            log.info("%s: %s", folder, project.note)
            return project
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
    def _open(cls, folder: Path, classes, *, start_fresh: bool, read_only: bool, reason: str | None = None) -> Project:
        path = folder / PROJECT_FILE
        doc = None
        project = None
        if path.exists():
            try:
                doc = read_project_file(path)
                project = cls._from_json(folder, path, doc)
            except ProjectFileError:
                if not start_fresh or read_only:
                    raise
                stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
                kept = path.with_name(f"{PROJECT_FILE}.broken-{stamp}")
                path.rename(kept)
                log.warning("%s: kept aside as %s; starting fresh with what could be read", path, kept.name)
                doc = salvage(doc) if isinstance(doc, dict) else None
        if project is None:
            fresh = {"classes": [c.to_json() for c in as_classes(classes or DEFAULT_CLASSES)]}
            try:
                project = cls._from_json(folder, path, doc if doc is not None else fresh)
            except ProjectFileError:
                project = cls._from_json(folder, path, fresh)
        project.project_writer.read(path)
        if read_only:
            project.read_only = reason or "the project is open in another window, so this one only reads it"
            project.journal.writable, project.journal.read_only_reason = False, project.read_only
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

        from training import outputs  # the names a run gives its files

        said = []
        tmps = self.label_store.remove_unfinished()
        if tmps:
            said.append(f"removed {tmps} unfinished label write(s) from labels/ (the saved labels are intact)")
        if self.models_dir.is_dir():
            ckpts = outputs.checkpoint_dirs(self.models_dir)
            for p in ckpts:
                shutil.rmtree(p, ignore_errors=True)
            if ckpts:
                said.append(f"removed the checkpoints of {len(ckpts)} interrupted training run(s)")
            for best, final in outputs.best_models(self.models_dir):
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
        fields = parse(folder, path, doc)
        project = cls(folder, fields.classes, fields.settings, [], fields.models, fields.current_model)
        project.loop = fields.loop
        project.notices = fields.notices
        project.images = project._scan(path, fields.images)
        return project

    def _scan(self, path: Path, images_json: dict) -> list[ImageEntry]:
        entries: list[ImageEntry] = []
        owners: dict[str, ImageEntry] = {}
        for image_path in list_images(self.folder):
            entry = ImageEntry(image_path, image_path.stem)
            status, entry.mean_entropy = image_record(path, images_json, image_path.name)
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
    def write_folder(self) -> Path | None:
        """Where labels, journal and project file go after `redirect` (None: the project's folder)."""
        return self.label_store.write_folder

    @property
    def project_file(self) -> Path:
        return (self.write_folder or self.folder) / PROJECT_FILE

    @property
    def labels_dir(self) -> Path:
        return self.label_store.dir

    @property
    def models_dir(self) -> Path:
        return self.folder / "models"

    def label_path(self, entry: ImageEntry) -> Path:
        """Where the image's labels are read from (after `redirect`: the new folder's once saved there)."""
        return self.label_store.path(entry.stem)

    def label_target(self, entry: ImageEntry) -> Path:
        """Where the image's labels are written."""
        return self.label_store.target(entry.stem)

    def redirect(self, folder: str | Path) -> None:
        """Write labels, the recovery journal and segassist.json into `folder` from now on (the images and
        the labels saved so far are read where they are). Raises OSError when `folder` cannot be written."""
        folder = Path(folder).expanduser().resolve()
        self.label_store.redirect(folder)
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
        """The image with its saved labels, cached proposal and journal replayed; edits are journaled
        (`saving.attach`).

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
        labels = self.label_store.read(entry.stem, entry.size, len(self.classes), entry.path.name)
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
        self.saving.attach(entry, doc)  # every write of the document is in the journal before anything else
        return doc

    def save_document(self, entry: ImageEntry, doc: LabelDocument, *, force: bool = False) -> None:
        """Write the labels atomically, then mark them saved, clear the journal and write the project file
        (`Saving.save_document`).

        Raises OSError when the write fails; the document stays dirty and the journal keeps the edits.
        A label file that changed on disk since it was read raises `ChangedOnDiskError` unless `force`.
        """
        self.saving.save_document(entry, doc, force=force)

    def begin_save(self, entry: ImageEntry, doc: LabelDocument, *, copy: bool = True,
                   force: bool = False) -> PendingSave:
        """Prepare a save of the labels as they are now (a copy, so painting may go on meanwhile)."""
        return self.saving.begin(entry, doc, copy=copy, force=force)

    def finish_save(self, pending: PendingSave) -> None:
        """After `pending.write()` succeeded: the document is saved as of then, journal cleared up to it.

        Raises `ProjectFileWriteError` when segassist.json cannot be written (the labels are saved)."""
        self.saving.finish(pending)

    def check_writable(self) -> None:
        """OSError (EROFS, with why) when nothing may be written (read-only, not redirected elsewhere)."""
        if self.read_only and self.write_folder is None:
            raise OSError(errno.EROFS, self.read_only, str(self.folder))

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
        if not os.path.lexists(path):
            return None
        try:
            cached = read_prediction(path, shape)
        except PredictionFileError as exc:  # a cache: a broken one is dropped, and the proposal made again
            log.warning("dropping an unusable cached proposal: %s", exc)
            if not self.read_only:
                with contextlib.suppress(OSError):
                    path.unlink()
            return None
        if (cached.labels[cached.labels != 255] >= len(self.classes)).any():
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
        new = {"name": name, "color": list(color) if color is not None else default_color(len(self.classes))}
        self.classes = as_classes([*self.classes, new])  # checks the name and the colour
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
        version = model_version(path, info)
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
        return next_model_path(self.models_dir, self.models, arch)

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
        return to_json(self.folder, self.classes, self.settings, self.images, self.models, self.current_model,
                       self.loop, self.notices)

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
        self.dirty = False
        return self.project_writer.snapshot(self.to_json())

    def write_snapshot(self, generation: int, data: bytes, *, force: bool = False) -> bool:
        """Write a snapshot (from any thread); one older than the file on disk is dropped. Raises OSError,
        and `ChangedOnDiskError` when the file changed on disk since it was read or written here."""
        self.check_writable()
        return self.project_writer.write(self.project_file, generation, data, force=force)


def _reason(exc: Exception, path: Path) -> str:
    """An error message without the leading file name (the list shows it already)."""
    text = str(exc)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text
