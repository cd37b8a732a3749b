"""The editing session: which image is open, its document, the class and brush in use, when to save.

Saving itself is the project's `app.core.storage.saving.Saving`: every committed write of the document (a
stroke, an undo, a redo) is in the recovery journal before the editor hears of it (`Saving.follow`);
the editor saves the labels shortly after the last stroke (debounced, written on a worker thread), on
image switch and on quit. A failed write (labels, journal or project file) is known at once:
`save_error` says what is and is not safe, `saveFailed` fires, and the documents stay in memory until
a retry, a save to another folder or an export.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from app.core.editing import tools
from app.core.loop.loop_record import ActivityClock, Correction
from app.core.storage.saving import RETRY_HINT, why
from app.services.workers import Cancelled, JobRunner

log = logging.getLogger(__name__)

AUTOSAVE_MS = 800
LARGE_PIXELS = 16_000_000  # larger images load on a worker thread


class Editor(QObject):
    """Mediates between the canvas's tools, the current `LabelDocument` and the `Project`."""

    documentChanged = Signal(object)  # the document now shown, or None
    entryChanged = Signal(int)        # an image's status or scores changed
    historyChanged = Signal()         # undo/redo availability or the dirty flag changed
    saved = Signal(int)               # an image's labels reached the disk
    saveFailed = Signal(str)          # why the labels could not be saved (they are kept)
    message = Signal(str)             # a line for the status bar
    explainRequested = Signal(tuple)  # (y, x): the attention tool was clicked there
    reviewed = Signal(int)            # an image was marked reviewed (its correction recorded)

    def __init__(self, canvas, parent: QObject | None = None):
        super().__init__(parent)
        self.canvas = canvas
        self.project = None
        self.index: int | None = None
        self.doc = None
        self._class: int | None = 0
        self.brush_radius = 12
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(AUTOSAVE_MS)
        self._timer.timeout.connect(self.autosave)
        self.grabcut_jobs = JobRunner(1, self)
        self.loader = JobRunner(1, self)
        self.loading: int | None = None  # the image being loaded in the background
        self.save_jobs = JobRunner(1, self)
        self._clock: ActivityClock | None = None  # time spent on the open image
        self.smart = None  # the window's SmartTools (superpixels, SAM), which set themselves here

    # -- project and image ----------------------------------------------------------------------------
    def start_folder(self) -> str:
        """Where file dialogs start: the project's folder, else the folder the app was started in."""
        return str(self.project.folder if self.project is not None else Path.cwd())

    @property
    def entry(self):
        if self.project is None or self.index is None:
            return None
        return self.project.images[self.index]

    @property
    def saving(self):
        """The project's `Saving` (None without a project)."""
        return self.project.saving if self.project is not None else None

    @property
    def save_error(self) -> str | None:
        """What could not be saved and where the edits are, for the person; None when all is on disk."""
        return self.project.saving.error if self.project is not None else None

    def set_project(self, project) -> None:
        """Edit `project` from now on; the class to paint goes back to its first class."""
        self.close_image()
        self.project = project
        if project is not None and self._report not in project.saving.on_report:
            project.saving.on_report.append(self._report)
        self._class = 0 if project is not None and project.classes else None

    @property
    def current_class(self) -> int | None:
        """The class the tools paint: always one of the project's classes, or None."""
        c = self._class
        if c is None or self.project is None or not 0 <= c < len(self.project.classes):
            return None
        return c

    @current_class.setter
    def current_class(self, index: int | None) -> None:
        self._class = None if index is None else int(index)

    def classes_changed(self) -> None:
        """The project's classes were added, removed or reordered: documents accept the new range."""
        n = len(self.project.classes) if self.project is not None else None
        for doc in (self.doc, *(self.saving.held.values() if self.saving is not None else ())):
            if doc is not None:
                doc.num_classes = n
        if self.current_class is None and n:
            self._class = min(self._class or 0, n - 1)

    def open_image(self, index: int) -> bool:
        """Save the current image if edited, then load and show image `index`. False when it cannot be read.

        Images over `LARGE_PIXELS` load on a worker thread (the window stays responsive; `documentChanged`
        fires when the image is there); smaller ones load at once."""
        if self.project is None or not 0 <= index < len(self.project.images):
            return False
        if index == self.index:
            return True
        self.close_image()
        entry = self.project.images[index]
        self.index = index
        doc = self.saving.held.pop(entry.stem, None)
        if doc is not None:
            self._show(index, doc)
            return True
        if entry.size is not None and entry.size[0] * entry.size[1] > LARGE_PIXELS and entry.error is None:
            self.loading = index
            self.message.emit(f"Loading {entry.name} ({entry.size[1]} x {entry.size[0]})…")
            self.canvas.set_placeholder(f"Loading {entry.name}…")

            def work(job):
                if self.loading != index:  # the person has moved on
                    raise Cancelled(entry.name)
                return self.project.load_document(entry)

            self.loader.start(f"loading {entry.name}", work, on_result=lambda d: self._loaded(index, d),
                              on_failed=lambda msg: self._load_failed(index, msg))
            self.documentChanged.emit(None)
            return True
        try:
            doc = self.project.load_document(entry)
        except Exception as exc:  # noqa: BLE001 - an unreadable image is reported, the rest work
            self._load_failed(index, str(exc))
            return False
        self._show(index, doc)
        return True

    def _loaded(self, index: int, doc) -> None:
        if self.loading != index or self.index != index:
            self.saving.detach(doc)  # superseded by another image: drop it
            return
        self.loading = None
        self._show(index, doc)

    def _load_failed(self, index: int, why: str) -> None:
        entry = self.project.images[index]
        log.warning("cannot open %s: %s", entry.path, why)
        if self.loading == index:
            self.loading = None
        if not entry.error:
            entry.error = why
        why = entry.error  # the reason without the file's path (the list and the message name the file)
        self.entryChanged.emit(index)
        self.message.emit(f"Cannot open {entry.name}: {why}")
        self.canvas.set_placeholder(f"Cannot open {entry.name}\n\n{why}")
        if self.index == index:
            self.documentChanged.emit(None)

    def _show(self, index: int, doc) -> None:
        self.index = index
        self.doc = doc
        self.saving.follow(doc, self._on_commit)  # called once the journal has each write
        self._clock = ActivityClock(time.monotonic())
        self.canvas.set_document(doc, self.project.classes)
        self.documentChanged.emit(doc)
        self.historyChanged.emit()

    def close_image(self) -> None:
        """Save (or hold, when saving fails) the current document and clear the canvas."""
        self._timer.stop()
        self._bank_time()
        if self.doc is not None:
            if self.doc.dirty and not self.save():
                self.saving.hold(self.entry, self.doc)  # still journaled, no longer followed here
            else:
                # The journal's listener refers back to the document: break the cycle so the image's
                # arrays go as soon as the document does, not at some later garbage collection.
                self.saving.detach(self.doc)
                self.doc.listeners.clear()
        self.canvas.set_document(None, [])
        self.doc = None
        self.index = None
        self.loading = None

    # -- review ---------------------------------------------------------------------------------------
    def _bank_time(self) -> None:
        """Add the time spent on the open image so far to its record (saved with the project)."""
        if self._clock is not None and self.entry is not None and self.doc is not None:
            self.project.loop.add_seconds(self.entry.name, self._clock.take(time.monotonic()))

    def mark_reviewed(self) -> Correction | None:
        """Save the labels, mark the image reviewed and record what was changed in its proposal and the time
        spent on it. None when there is no image or the labels could not be saved; OSError when the project
        file cannot be written."""
        entry, doc, index = self.entry, self.doc, self.index
        if doc is None or entry is None or not self.save():
            return None
        seconds = self._clock.take(time.monotonic()) if self._clock is not None else 0.0
        record = self.project.record_review(entry, doc, seconds)
        self.entryChanged.emit(index)
        self.reviewed.emit(index)
        return record

    # -- edits ----------------------------------------------------------------------------------------
    def _on_commit(self, stroke, revision: int) -> None:
        if self._clock is not None:
            self._clock.tick(time.monotonic())
        entry = self.entry
        if entry is not None and entry.status in ("unlabelled", "predicted"):
            self.save_project(lambda: self.project.set_status(entry, "edited", durable=False))
            self.entryChanged.emit(self.index)
        self._timer.start()
        self.historyChanged.emit()

    def undo(self) -> None:
        if self.doc is not None and not self.doc.in_stroke and self.doc.undo() is not None:
            self.message.emit("Undone")

    def redo(self) -> None:
        if self.doc is not None and not self.doc.in_stroke and self.doc.redo() is not None:
            self.message.emit("Redone")

    def accept_proposal(self) -> bool:
        """Copy the proposal into every pixel not labelled yet (one undo step)."""
        doc = self.doc
        if doc is None or doc.proposal is None:
            self.message.emit("No proposal for this image yet: segment it first")
            return False
        values = tools.accept_proposal(doc.proposal, doc.labels, None, only_unlabelled=True)
        if values is None or doc.paint(*values) is None:
            self.message.emit("Nothing to accept: every pixel is labelled already")
            return False
        self.message.emit("Accepted the proposal where nothing was labelled")
        return True

    def run_grabcut(self, box: tuple[int, int, int, int]) -> None:
        """GrabCut in `box` on a worker thread; the result is painted with the current class."""
        doc, value = self.doc, self.current_class
        if doc is None or value is None:
            return
        h, w = doc.shape
        margin = max(8, (max(box[2] - box[0], box[3] - box[1]) + 9) // 10)
        y0, x0 = max(box[0] - margin, 0), max(box[1] - margin, 0)
        y1, x1 = min(box[2] + margin, h), min(box[3] + margin, w)
        image = doc.image[y0:y1, x0:x1]
        labels = doc.labels[y0:y1, x0:x1].copy()
        local = (box[0] - y0, box[1] - x0, box[2] - y0, box[3] - x0)
        self.message.emit("GrabCut…")

        def work(job):
            return tools.grabcut(image, local, labels, value=value, margin=margin)

        def done(crop):
            if crop is None:
                self.message.emit("GrabCut found no object in the box")
                return
            if self.doc is not doc:
                return  # the person moved on to another image meanwhile
            (oy, ox), mask = crop
            doc.paint((oy + y0, ox + x0), mask, value)
            self.message.emit(f"GrabCut: {int(mask.sum())} pixels")

        self.grabcut_jobs.start("GrabCut", work, on_result=done,
                                on_failed=lambda msg: self.message.emit(f"GrabCut failed: {msg}"))

    def explain_at(self, pixel: tuple[int, int]) -> None:
        self.explainRequested.emit(tuple(pixel))

    def say(self, text: str) -> None:
        """A line for the person (the gestures' way to explain why nothing happened)."""
        self.message.emit(text)

    # -- the smart gestures' context (app.core.smart.smart_gestures.SmartContext), answered by SmartTools ---------
    @property
    def sam_model(self):
        return self.smart.sam if self.smart is not None else None

    def superpixel_level(self):
        return self.smart.level() if self.smart is not None else None

    def sam_embedding(self):
        return self.smart.current_embedding() if self.smart is not None else None

    def run_decoder(self, work, on_result, on_failed) -> None:
        self.smart.decode(work, on_result, on_failed)

    # -- saving ---------------------------------------------------------------------------------------
    def autosave(self) -> None:
        """Save the current labels in the background (a copy is written; painting goes on)."""
        doc, entry, index = self.doc, self.entry, self.index
        if doc is None or entry is None or not doc.dirty:
            return
        if doc.in_stroke:  # never save half a stroke; try again once it ends
            self._timer.start()
            return
        saving = self.project.saving
        pending = saving.start(entry, doc)  # 2. the label file: a copy, written on the worker thread

        def done(_path) -> None:
            saving.written(pending)  # 3. the project file (handed to the deferred saver)
            self._saved(index)

        def failed(msg: str) -> None:
            # the person moved on meanwhile: keep the document until it is written
            saving.write_failed(pending, msg, hold=self.doc is not doc)

        self.save_jobs.start(f"saving {entry.name}", lambda job: pending.write(), on_result=done, on_failed=failed)

    def save(self, force: bool = False) -> bool:
        """Write the current labels now. On failure: `saveFailed`, the edits stay (memory and journal)."""
        self._timer.stop()
        self.save_jobs.wait()
        doc, entry = self.doc, self.entry
        if doc is None or entry is None or not doc.dirty:
            return self.save_error is None or doc is None
        if not self.project.saving.save(entry, doc, force=force):
            return False
        self._saved(self.index)
        return True

    def save_project(self, change) -> bool:
        """Run `change` (a Project call that writes segassist.json); a failed write is reported, not raised."""
        return self.project.saving.save_project(change)

    def _saved(self, index: int | None) -> None:
        if index is not None:
            self.saved.emit(index)
            self.entryChanged.emit(index)
        self.historyChanged.emit()

    def _report(self, new: bool) -> None:
        """`Saving.error` changed: `saveFailed` when a new problem appeared."""
        if self.save_error and new:
            self.saveFailed.emit(self.save_error + RETRY_HINT)
        self.historyChanged.emit()

    def retry(self, force: bool = False) -> bool:
        """Write everything held in memory again: journal records, labels, the project file.
        With `force`, files that changed on disk since they were read are overwritten."""
        if self.project is None:
            return True
        self.project.saving.retry_project_file(force)
        return self.save_all(force=force)

    def save_elsewhere(self, folder) -> bool:
        """Write labels, journal and project file into `folder` from now on, and save what is held there."""
        try:
            self.project.saving.redirect(folder)
        except OSError as exc:
            self.saveFailed.emit(f"Cannot write to {folder}: {why(exc)}")
            return False
        self.message.emit(f"Labels are saved to {self.project.write_folder} from now on")
        return self.retry()

    def save_all(self, force: bool = False) -> bool:
        """Save the current document and any held after an earlier failure."""
        ok = self.save(force)
        if self.project is None:
            return ok
        held_ok = self.project.saving.save_held(force)
        return ok and held_ok

    def unsaved_report(self) -> tuple[list[str], list[str]]:
        """Names of images with unsaved edits: (those the recovery journal holds, those only in memory)."""
        if self.project is None:
            return [], []
        return self.project.saving.unsaved_report(self.entry, self.doc)

    def documents(self) -> dict[str, object]:
        """Every document with edits not on disk, by stem (held ones and the open one)."""
        if self.project is None:
            return {}
        return self.project.saving.documents(self.entry, self.doc)

    @property
    def unsaved(self) -> bool:
        if self.project is None:
            return self.doc is not None and self.doc.dirty
        return self.project.saving.unsaved(self.doc)

    # -- predictions ----------------------------------------------------------------------------------
    def show_prediction(self, index: int, labels: np.ndarray, confidence, entropy) -> None:
        """A new proposal for image `index`: shown when it is the open one."""
        if index == self.index and self.doc is not None:
            self.doc.set_proposal(labels, confidence, entropy)

