"""The editing session: which image is open, its document, the class and brush in use, saving.

Every committed write of the document (a stroke, an undo, a redo) is in the recovery journal before
the GUI goes on (the project attaches the journal when it loads a document); the labels are saved
shortly after the last stroke (debounced), on image switch and on quit. A failed write (labels,
journal or project file) is known at once: `save_error` says what is and is not safe, `saveFailed`
fires, and the documents stay in memory until a retry, a save to another folder or an export.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from app.core import tools
from app.core.loop_record import ActivityClock, Correction
from app.core.project import ProjectFileWriteError
from app.workers import Cancelled, JobRunner

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
        self._held: dict[str, object] = {}  # documents whose save failed, by stem: edits stay in memory
        self._label_errors: dict[str, str] = {}  # stem -> why its labels could not be saved
        self._project_error: str | None = None  # why segassist.json could not be saved
        self.save_error: str | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(AUTOSAVE_MS)
        self._timer.timeout.connect(self.autosave)
        self.grabcut_jobs = JobRunner(1, self)
        self.loader = JobRunner(1, self)
        self.loading: int | None = None  # the image being loaded in the background
        self.save_jobs = JobRunner(1, self)
        self._saving = 0
        self._clock: ActivityClock | None = None  # time spent on the open image
        self.smart = None  # the window's SmartTools (superpixels, SAM), which set themselves here

    # -- project and image ----------------------------------------------------------------------------
    @property
    def entry(self):
        if self.project is None or self.index is None:
            return None
        return self.project.images[self.index]

    def set_project(self, project) -> None:
        """Edit `project` from now on; the class to paint goes back to its first class."""
        self.close_image()
        self.project = project
        self._held.clear()
        self._label_errors.clear()
        self._project_error = None
        self.save_error = None
        if project is not None and self._journal_changed not in project.journal.on_change:
            project.journal.on_change.append(self._journal_changed)
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
        for doc in (self.doc, *self._held.values()):
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
        doc = self._held.pop(entry.stem, None)
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
            doc.stroke_listeners.clear()  # superseded by another image: drop it
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
        doc.stroke_listeners.append(self._on_commit)
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
                self._held[self.entry.stem] = self.doc  # keeps its journal listener for later strokes
                self.doc.stroke_listeners.remove(self._on_commit)
            else:
                # The journal's listener refers back to the document: break the cycle so the image's
                # arrays go as soon as the document does, not at some later garbage collection.
                self.doc.stroke_listeners.clear()
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

    # -- the smart gestures' context (app.core.smart_gestures.SmartContext), answered by SmartTools ---------
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
        pending = self.project.begin_save(entry, doc)
        self._saving += 1

        def done(_path) -> None:
            self._saving -= 1
            self.save_project(lambda: self.project.finish_save(pending))
            self._saved(index, entry)

        def failed(msg: str) -> None:
            self._saving -= 1
            if not doc.dirty:  # saved meanwhile (a retry or a save to another folder)
                return
            self._save_failed(entry, doc, msg)
            if self.doc is not doc:  # the person moved on meanwhile: keep the document until it is written
                self._held[entry.stem] = doc

        self.save_jobs.start(f"saving {entry.name}", lambda job: pending.write(), on_result=done, on_failed=failed)

    def save(self, force: bool = False) -> bool:
        """Write the current labels now. On failure: `saveFailed`, the edits stay (memory and journal)."""
        self._timer.stop()
        self.save_jobs.wait()
        doc, entry = self.doc, self.entry
        if doc is None or entry is None or not doc.dirty:
            return self.save_error is None or doc is None
        try:
            self.project.save_document(entry, doc, force=force)
        except ProjectFileWriteError as exc:  # the labels are saved; segassist.json is not
            self._project_error = _why(exc)
            self._update_error(new=True)
        except OSError as exc:
            self._save_failed(entry, doc, _why(exc))
            return False
        self._saved(self.index, entry)
        return True

    def save_project(self, change) -> bool:
        """Run `change` (a Project call that writes segassist.json); a failed write is reported, not raised."""
        try:
            change()
        except OSError as exc:
            self._project_error = _why(exc)
            self._update_error(new=True)
            return False
        if self._project_error is not None:
            self._project_error = None
            self._update_error()
        return True

    def _saved(self, index: int | None, entry) -> None:
        if self._label_errors.pop(entry.stem, None) is not None or self.save_error is not None:
            self._update_error()
        if index is not None:
            self.saved.emit(index)
            self.entryChanged.emit(index)
        self.historyChanged.emit()

    def _save_failed(self, entry, doc, why: str) -> None:
        if doc is not self.doc:
            self._held[entry.stem] = doc
        new = entry.stem not in self._label_errors
        self._label_errors[entry.stem] = why
        self._update_error(new=new)

    def _journal_changed(self, stem: str, error: str | None) -> None:
        self._update_error(new=error is not None)

    def _name(self, stem: str) -> str:
        entry = next((e for e in self.project.images if e.stem == stem), None) if self.project else None
        return entry.name if entry is not None else stem

    def _update_error(self, new: bool = False) -> None:
        """Recompute `save_error` from what failed; `saveFailed` when a new problem appeared."""
        journal = self.project.journal if self.project is not None else None
        lines = []
        for stem, why in self._label_errors.items():
            kept = ("they are in the recovery journal" if journal is not None and not journal.unwritten(stem)
                    else "they are in memory only")
            lines.append(f"Could not save the labels of {self._name(stem)}: {why}. Your edits are kept: {kept}.")
        for stem, why in (journal.errors.items() if journal is not None else ()):
            lines.append(f"Could not write the recovery journal of {self._name(stem)} ({why}): the latest edits "
                         "are in memory only until they can be written.")
        if self._project_error is not None:
            lines.append(f"Could not save the project file: {self._project_error}.")
        self.save_error = "\n".join(lines) if lines else None
        if self.save_error and new:
            self.saveFailed.emit(self.save_error + "\n\nRetry, save the labels to another folder, or export them.")
        self.historyChanged.emit()

    def retry(self, force: bool = False) -> bool:
        """Write everything held in memory again: journal records, labels, the project file.
        With `force`, files that changed on disk since they were read are overwritten."""
        if self.project is None:
            return True
        self.project.journal.retry()
        if self._project_error is not None:
            self.save_project(lambda: self.project.save(force=force))
        return self.save_all(force=force)

    def save_elsewhere(self, folder) -> bool:
        """Write labels, journal and project file into `folder` from now on, and save what is held there."""
        try:
            self.project.redirect(folder)
        except OSError as exc:
            self.saveFailed.emit(f"Cannot write to {folder}: {_why(exc)}")
            return False
        self.message.emit(f"Labels are saved to {self.project.write_folder} from now on")
        self.save_project(self.project.save)  # the project file goes there too, now
        return self.retry()

    def save_all(self, force: bool = False) -> bool:
        """Save the current document and any held after an earlier failure."""
        ok = self.save(force)
        for stem, doc in list(self._held.items()):
            entry = next((e for e in self.project.images if e.stem == stem), None)
            if entry is None:
                continue
            try:
                self.project.save_document(entry, doc, force=force)
            except ProjectFileWriteError as exc:
                self._project_error = _why(exc)
            except OSError as exc:
                ok = False
                self._label_errors[stem] = _why(exc)
                continue
            del self._held[stem]
            self._label_errors.pop(stem, None)
        if self.project is not None:
            self.project.journal.retry()
        self._update_error()
        return ok and self.save_error is None

    def unsaved_report(self) -> tuple[list[str], list[str]]:
        """Names of images with unsaved edits: (those the recovery journal holds, those only in memory)."""
        if self.project is None:
            return [], []
        journal = self.project.journal
        stems = set(self._held) | set(self._label_errors) | set(journal.errors)
        if self.doc is not None and self.doc.dirty and self.entry is not None:
            stems.add(self.entry.stem)
        in_journal = sorted(self._name(s) for s in stems if not journal.unwritten(s) and journal.writable)
        in_memory = sorted(self._name(s) for s in stems if journal.unwritten(s) or not journal.writable)
        return in_journal, in_memory

    def documents(self) -> dict[str, object]:
        """Every document with edits not on disk, by stem (held ones and the open one)."""
        docs = dict(self._held)
        if self.doc is not None and self.entry is not None and self.doc.dirty:
            docs[self.entry.stem] = self.doc
        return docs

    @property
    def unsaved(self) -> bool:
        journal_behind = self.project is not None and self.project.journal.unwritten() > 0
        return (bool(self._held) or self._saving > 0 or (self.doc is not None and self.doc.dirty)
                or journal_behind)

    # -- predictions ----------------------------------------------------------------------------------
    def show_prediction(self, index: int, labels: np.ndarray, confidence, entropy) -> None:
        """A new proposal for image `index`: shown when it is the open one."""
        if index == self.index and self.doc is not None:
            self.doc.set_proposal(labels, confidence, entropy)


def _why(exc: OSError) -> str:
    """An OSError as a person reads it: the reason, and the file when the message does not name it."""
    text = exc.strerror or str(exc)
    if exc.filename and str(exc.filename) not in text:
        text = f"{text} ({exc.filename})"
    return text
