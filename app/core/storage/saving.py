"""Saving an image's edits: one owner, and its order written out as code.

1. **The journal.** Every committed write of a document (a stroke, an undo, a redo) is appended to the
   recovery journal and flushed to disk before anyone else hears of it: `attach` gives a loaded document
   one stroke listener, `_Committer`, which records the stroke and only then calls what `follow` gave it
   (the editor: the autosave timer, the image list).
2. **The label file.** `begin` copies the labels on the thread that edits; `PendingSave.write` writes
   them atomically on any thread (a background job in the app).
3. **The project file.** `finish`, back on the thread that edits, marks the document saved, clears the
   journal up to what the file holds, notes the image as edited and writes `segassist.json` (at once,
   or through the project's deferred saver, off the GUI thread).

A failure at any step loses nothing: a journal record that cannot be written stays in memory (in
order) until a retry, a label file that cannot be written leaves the document dirty and its strokes in
the journal, and a document the person moves away from is held here (`held`) until it is written.
`error` says, for the person, what failed and where the edits are; `on_report` listeners hear when it
changes. No Qt here: the app's editor adds the timer and the worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from app.core.editing.document import LabelDocument
from app.core.editing.stroke import Stroke
from app.core.storage.label_store import PendingSave
from app.core.storage.project_file import ProjectFileWriteError

log = logging.getLogger(__name__)

RETRY_HINT = "\n\nRetry, save the labels to another folder, or export them."


class _Committer:
    """A document's one stroke listener: `first` (if any), then the journal, then `then` (if any)."""

    def __init__(self, journal: Callable[[Stroke, int], None]):
        self.journal = journal
        self.first: Callable[[Stroke, int], None] | None = None
        self.then: Callable[[Stroke, int], None] | None = None

    def __call__(self, stroke: Stroke, revision: int) -> None:
        if self.first is not None:  # an error here stops the write's bookkeeping, journal included
            self.first(stroke, revision)
        self.journal(stroke, revision)  # a failed write is held in memory and reported, never raised
        if self.then is not None:
            self.then(stroke, revision)


class Saving:
    """Writes a project's edited documents: journal, then label file, then project file (module docstring)."""

    def __init__(self, project):
        self.project = project
        self.held: dict[str, LabelDocument] = {}  # documents whose save failed, by stem: edits stay in memory
        self.label_errors: dict[str, str] = {}  # stem -> why its labels could not be saved
        self.project_error: str | None = None  # why segassist.json could not be saved
        self.error: str | None = None  # all of the above (and the journal's failures) for the person
        self.in_flight = 0  # label writes begun and not finished
        self.on_report: list[Callable[[bool], None]] = []  # `error` changed; True when a new problem appeared
        project.journal.on_change.append(self._journal_changed)

    # ---- 1. the journal, before anything else hears of a write -------------------------------------

    def attach(self, entry, doc: LabelDocument) -> None:
        """Journal every write `doc` commits from now on (a failed write is reported, never raised)."""
        doc.stroke_listeners.append(_Committer(self.project.journal.recorder(entry.stem, doc)))

    def follow(self, doc: LabelDocument, then: Callable[[Stroke, int], None] | None) -> None:
        """Call `then(stroke, revision)` after each of `doc`'s writes is in the journal (None: stop)."""
        committer = _committer(doc)
        if committer is None:
            raise ValueError("the document was not loaded through the project: its writes are not journaled")
        committer.then = then

    def precede(self, doc: LabelDocument, first: Callable[[Stroke, int], None] | None) -> None:
        """Call `first(stroke, revision)` before each of `doc`'s writes goes to the journal (an import writes
        its undo record there); an error it raises propagates to the writer, and the journal is not written."""
        committer = _committer(doc)
        if committer is None:
            raise ValueError("the document was not loaded through the project: its writes are not journaled")
        committer.first = first

    @staticmethod
    def detach(doc: LabelDocument) -> None:
        """Stop journaling `doc` (it is saved, or dropped); also ends the listener's reference back to it."""
        doc.stroke_listeners.clear()

    # ---- 2. the label file, 3. the project file ------------------------------------------------------

    def begin(self, entry, doc: LabelDocument, *, copy: bool = True, force: bool = False) -> PendingSave:
        """Prepare a save of the labels as they are now; `write()` it anywhere, then `finish` it here."""
        self.project.check_writable()
        return self.project.label_store.begin(entry, doc, self.project.classes, copy=copy, force=force)

    def start(self, entry, doc: LabelDocument) -> PendingSave:
        """`begin` a save whose `write()` runs on another thread; end it with `written` or `write_failed`."""
        pending = self.begin(entry, doc)
        self.in_flight += 1
        return pending

    def finish(self, pending: PendingSave) -> None:
        """After `pending.write()` succeeded: the document is saved as of then, the journal cleared up to it,
        then the project file written. Raises `ProjectFileWriteError` when it cannot be (the labels are safe)."""
        project = self.project
        project.label_store.written(pending)
        pending.doc.mark_saved(pending.state)
        try:
            project.journal.clear(pending.entry.stem, upto=pending.revision)
        except OSError as exc:  # the labels are safe; stale records only replay the same values
            log.warning("%s: journal not cleared after a save (%s)", project.journal.path(pending.entry.stem), exc)
        if pending.written is None:  # no label left: the status the files imply (see Project._status_on_disk)
            pending.entry.status = "predicted" if project.prediction_path(pending.entry).exists() else "unlabelled"
        elif pending.entry.status in ("unlabelled", "predicted"):
            pending.entry.status = "edited"  # what the label file on disk says anyway (see Project._status_on_disk)
        try:
            if project.deferred_save is None:
                project.save(force=pending.force)
            else:
                project.touch()
        except OSError as exc:
            raise ProjectFileWriteError(exc.errno, exc.strerror or str(exc), exc.filename) from exc

    def save_document(self, entry, doc: LabelDocument, *, force: bool = False) -> None:
        """All three steps now, on this thread. Raises OSError when the label file cannot be written (the
        document stays dirty, the journal keeps the edits), `ChangedOnDiskError` when it changed on disk
        since it was read (unless `force`), `ProjectFileWriteError` when only the project file failed."""
        pending = self.begin(entry, doc, copy=False, force=force)
        pending.write()
        self.finish(pending)

    # ---- the same, with every failure kept and reported instead of raised ----------------------------

    def save(self, entry, doc: LabelDocument, *, force: bool = False) -> bool:
        """`save_document`, reported: False when the labels could not be written (they stay in memory)."""
        try:
            self.save_document(entry, doc, force=force)
        except ProjectFileWriteError as exc:  # the labels are saved; segassist.json is not
            self.project_error = why(exc)
            self._report(new=True)
        except OSError as exc:
            self.failed(entry, doc, why(exc))
            return False
        self.saved(entry)
        return True

    def written(self, pending: PendingSave) -> None:
        """A background `pending.write()` succeeded: finish it (a project file failure is reported)."""
        self.in_flight -= 1
        self.save_project(lambda: self.finish(pending))
        self.saved(pending.entry)

    def write_failed(self, pending: PendingSave, reason: str, *, hold: bool) -> None:
        """A background `pending.write()` failed; with `hold`, the document is kept here until written."""
        self.in_flight -= 1
        if not pending.doc.dirty:  # saved meanwhile (a retry or a save to another folder)
            return
        self.failed(pending.entry, pending.doc, reason, hold=hold)

    def saved(self, entry) -> None:
        """The labels of `entry` are on disk: an earlier failure of theirs is over."""
        if self.label_errors.pop(entry.stem, None) is not None or self.error is not None:
            self._report()

    def failed(self, entry, doc: LabelDocument, reason: str, *, hold: bool = False) -> None:
        """The labels of `entry` could not be written (`reason`); with `hold`, keep `doc` until they are."""
        if hold:
            self.hold(entry, doc)
        new = entry.stem not in self.label_errors
        self.label_errors[entry.stem] = reason
        self._report(new=new)

    def hold(self, entry, doc: LabelDocument) -> None:
        """Keep `doc` (not shown any more, not saved) until it is written; its writes are still journaled,
        and no longer followed."""
        self.held[entry.stem] = doc
        committer = _committer(doc)
        if committer is not None:
            committer.then = None

    def save_project(self, change: Callable[[], object]) -> bool:
        """Run `change` (a Project call that writes segassist.json); a failed write is reported, not raised."""
        try:
            change()
        except OSError as exc:
            self.project_error = why(exc)
            self._report(new=True)
            return False
        if self.project_error is not None:
            self.project_error = None
            self._report()
        return True

    def retry_project_file(self, force: bool = False) -> None:
        """Write the journal's held records, and the project file when it failed before."""
        self.project.journal.retry()
        if self.project_error is not None:
            self.save_project(lambda: self.project.save(force=force))

    def save_held(self, force: bool = False) -> bool:
        """Write every held document and journal record; True when nothing failed is left."""
        for stem, doc in list(self.held.items()):
            entry = next((e for e in self.project.images if e.stem == stem), None)
            if entry is None:
                continue
            try:
                self.save_document(entry, doc, force=force)
            except ProjectFileWriteError as exc:
                self.project_error = why(exc)
            except OSError as exc:
                self.label_errors[stem] = why(exc)
                continue
            del self.held[stem]
            self.label_errors.pop(stem, None)
        self.project.journal.retry()
        self._report()
        return self.error is None

    def redirect(self, folder: str | Path) -> None:
        """Labels, journal and project file go into `folder` from now on; the project file is written there
        now (a failure reported). Raises OSError when `folder` cannot be written."""
        self.project.redirect(folder)
        self.save_project(self.project.save)

    # ---- what is not on disk -------------------------------------------------------------------------

    def documents(self, entry=None, doc: LabelDocument | None = None) -> dict[str, LabelDocument]:
        """Every document with edits not on disk, by stem: the held ones and `doc` (the open one) if dirty."""
        docs = dict(self.held)
        if doc is not None and entry is not None and doc.dirty:
            docs[entry.stem] = doc
        return docs

    def unsaved_report(self, entry=None, doc: LabelDocument | None = None) -> tuple[list[str], list[str]]:
        """Names of images with unsaved edits: (those the recovery journal holds, those only in memory)."""
        journal = self.project.journal
        stems = set(self.held) | set(self.label_errors) | set(journal.errors)
        if doc is not None and doc.dirty and entry is not None:
            stems.add(entry.stem)
        in_journal = sorted(self._name(s) for s in stems if not journal.unwritten(s) and journal.writable)
        in_memory = sorted(self._name(s) for s in stems if journal.unwritten(s) or not journal.writable)
        return in_journal, in_memory

    def unsaved(self, doc: LabelDocument | None = None) -> bool:
        """Whether anything (held documents, a write under way, `doc`, journal records) is not on disk."""
        return (bool(self.held) or self.in_flight > 0 or (doc is not None and doc.dirty)
                or self.project.journal.unwritten() > 0)

    # ---- reporting -----------------------------------------------------------------------------------

    def _journal_changed(self, stem: str, error: str | None) -> None:
        self._report(new=error is not None)

    def _name(self, stem: str) -> str:
        entry = next((e for e in self.project.images if e.stem == stem), None)
        return entry.name if entry is not None else stem

    def _report(self, new: bool = False) -> None:
        """Recompute `error` from what failed and tell `on_report` (with `new` when a problem appeared)."""
        journal = self.project.journal
        lines = []
        for stem, reason in self.label_errors.items():
            kept = "they are in the recovery journal" if not journal.unwritten(stem) else "they are in memory only"
            lines.append(f"Could not save the labels of {self._name(stem)}: {reason}. Your edits are kept: {kept}.")
        for stem, reason in journal.errors.items():
            lines.append(f"Could not write the recovery journal of {self._name(stem)} ({reason}): the latest edits "
                         "are in memory only until they can be written.")
        if self.project_error is not None:
            lines.append(f"Could not save the project file: {self.project_error}.")
        self.error = "\n".join(lines) if lines else None
        for listener in list(self.on_report):
            listener(new)


def _committer(doc: LabelDocument) -> _Committer | None:
    return next((f for f in doc.stroke_listeners if isinstance(f, _Committer)), None)


def why(exc: OSError) -> str:
    """An OSError as a person reads it: the reason, and the file when the message does not name it."""
    text = exc.strerror or str(exc)
    if exc.filename and str(exc.filename) not in text:
        text = f"{text} ({exc.filename})"
    return text
