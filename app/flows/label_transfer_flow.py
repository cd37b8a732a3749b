"""What File → Import labels…, Export… and Undo last import do: dialogs, jobs off the GUI thread, refresh; and the
plain export of every label map as a palette PNG that the save-failed dialog offers.

The open image is saved and closed before an import (the import writes through the project's
documents and journal, one stroke per image) and opened again after it. The flow gets its dependencies
explicitly (the editor, which holds the project; a widget to parent its dialogs) and reports through
signals; the window refreshes its panels when the project's images or classes changed.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

from app.core.storage.label_transfer import (
    IMPORTS_DIR,
    TransferCancelled,
    export_entries,
    export_project,
    plan_import,
    run_import,
    undo_import,
)
from app.services.workers import Cancelled, JobRunner
from app.widgets.export_dialog import ExportDialog
from app.widgets.import_dialog import ImportDialog
from labelformats import FormatError, open_source


def _stoppable(fn):
    """A job function whose `TransferCancelled` counts as the job's cancel."""
    def run(job):
        try:
            return fn(job)
        except TransferCancelled as exc:
            raise Cancelled(str(exc)) from exc
    return run


class TransferFlow(QObject):
    """Import and export of labels for the editor's project."""

    finished = Signal(str)  # what an import, export or undo did (or why it stopped)
    message = Signal(str, int)   # a line for the status bar, and for how long (ms)
    warning = Signal(str, str)   # (title, text) worth a message box
    projectChanged = Signal(object)  # images, labels or classes changed; the image index to reopen (or None)

    def __init__(self, editor, dialog_parent, parent: QObject | None = None):
        super().__init__(parent)
        self.editor, self.dialog_parent = editor, dialog_parent
        self.jobs = JobRunner(1, self)
        self.palette_jobs = JobRunner(1, self)  # the palette export (no dialog whose Cancel would stop it)
        self.dialog = None

    @property
    def project(self):
        return self.editor.project

    # -- import ------------------------------------------------------------------------------------------
    def ask_import(self) -> ImportDialog | None:
        if self.project is None:
            return None
        dialog = ImportDialog([c.name for c in self.project.classes], self.dialog_parent)
        dialog.checkRequested.connect(lambda opts: self.check(dialog, opts))
        dialog.importRequested.connect(lambda opts: self.run(dialog, opts))
        dialog.cancelRequested.connect(self.jobs.cancel_all)
        self.dialog = dialog
        dialog.open()
        return dialog

    def _source(self, opts: dict):
        if not opts["source"]:
            raise FormatError("choose the label files first")
        return open_source(opts["format"], opts["source"], classes_file=opts["classes_file"],
                           project_classes=list(self.project.classes))

    def check(self, dialog: ImportDialog, opts: dict):
        """Read every label file once and show the class mapping (nothing is written)."""
        project = self.project

        def work(job):
            return plan_import(project, self._source(opts), unknown=opts["unknown"], progress=job.progress,
                               should_stop=job.should_stop)

        def done(plan) -> None:
            dialog.set_busy(False)
            m = plan.mapping
            rows = [(s.label, s.name if s.name is not None else f"class {s.id}",
                     None if m.targets[s.id] == 255 else m.classes[m.targets[s.id]].name) for s in m.sources]
            text = f"{len(plan.matches)} label files match images of the project"
            if plan.unmatched:
                text += f"; {len(plan.unmatched)} have no image and are skipped ({plan.unmatched[0].key}, …)"
            for note in plan.source.notes():
                text += f"; {note}"
            dialog.show_mapping(rows, text + ". Change what a class becomes, then Import.")

        return self._start(dialog, "checking labels", work, done)

    def run(self, dialog: ImportDialog, opts: dict):
        """Import with the mapping the dialog shows; the open image is saved, closed and reopened."""
        project = self.project
        if not self.editor.save_all():
            dialog.show_error("The open image's labels could not be saved; import stopped.")
            return None
        index = self.editor.index
        self.editor.close_image()

        def work(job):
            plan = plan_import(project, self._source(opts), overrides=opts["overrides"], unknown="error",
                               as_proposals=opts["as_proposals"], keep_existing=opts["keep_existing"],
                               progress=lambda d, t, s: job.progress(d, 2 * t, s), should_stop=job.should_stop)
            n = len(plan.matches)
            return run_import(project, plan, progress=lambda d, t, s: job.progress(n + d, 2 * n, s),
                              should_stop=job.should_stop)

        def done(result) -> None:
            what = "proposals" if opts["as_proposals"] else "labels"
            text = result.summary(what)
            text = text[0].upper() + text[1:]
            if result.cancelled:
                text += " (cancelled; those done stay imported and File → Undo last import takes them back)"
            self._refresh(index)
            dialog.finish(text)
            self._say(text)

        return self._start(dialog, "importing labels", work, done, after=lambda: self._refresh(index))

    # -- undo --------------------------------------------------------------------------------------------
    def last_import(self) -> Path | None:
        if self.project is None:
            return None
        folder = self.project.folder / ".segassist" / IMPORTS_DIR
        records = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        return records[-1] if records else None

    def undo_last_import(self):
        record = self.last_import()
        if record is None:
            self.message.emit("No import to undo", 6000)
            return None
        project = self.project
        if not self.editor.save_all():
            return None
        index = self.editor.index
        self.editor.close_image()

        def done(n) -> None:
            self._refresh(index)
            self._say(f"Undid the import of {n} images")

        def failed(msg: str) -> None:
            self._refresh(index)
            self.warning.emit("Undo of the import failed", msg)

        return self.jobs.start("undoing an import", lambda job: undo_import(project, record, job.progress),
                               on_result=done, on_failed=failed)

    # -- export ------------------------------------------------------------------------------------------
    def ask_export(self) -> ExportDialog | None:
        project = self.project
        if project is None:
            return None
        counts = {k: len(export_entries(project, k)) for k in ("reviewed", "labelled", "all")}
        dialog = ExportDialog(list(project.classes), counts, self.dialog_parent)
        dialog.exportRequested.connect(lambda opts: self.export(dialog, opts))
        dialog.cancelRequested.connect(self.jobs.cancel_all)
        self.dialog = dialog
        dialog.open()
        return dialog

    def export(self, dialog: ExportDialog, opts: dict):
        if not self.editor.save_all():
            dialog.finish("The open image's labels could not be saved; export stopped.", error=True)
            return None
        project = self.project

        def work(job):
            return export_project(project, opts["format"], opts["out"], which=opts["which"],
                                  val_fraction=opts["val_fraction"], polygons=opts["polygons"],
                                  tolerance=opts["tolerance"], progress=job.progress, should_stop=job.should_stop)

        def done(n) -> None:
            text = f"Exported {n} images as {opts['format']} into {opts['out']}"
            dialog.finish(text)
            self._say(text)

        return self._start(dialog, "exporting labels", work, done)

    # -- every label map as a palette PNG ----------------------------------------------------------------
    def ask_export_labels(self) -> None:
        if self.project is None:
            return
        folder = QFileDialog.getExistingDirectory(self.dialog_parent, "Export labels to a folder",
                                                  self.editor.start_folder())
        if folder:
            self.export_labels(Path(folder))

    def export_labels(self, folder: Path):
        """Every label map as a palette PNG coloured by the project's classes, into `folder`; edits that
        could not be saved are exported as they are in memory."""
        self.editor.save_all()
        from app.core.storage.label_export import export_labels, export_plan

        pairs = export_plan(self.project, folder, self.editor.documents())
        classes = list(self.project.classes)

        def work(job):
            return export_labels(pairs, classes, check=job.check, progress=job.progress)

        def done(n: int) -> None:
            self.message.emit(f"Exported {n} label maps to {folder}", 6000)

        return self.palette_jobs.start("exporting labels", work, on_result=done,
                                       on_failed=lambda msg: self.warning.emit("Export failed", msg))

    # -- internals ---------------------------------------------------------------------------------------
    def _start(self, dialog, name: str, work, done, after=None):
        dialog.set_busy(True)

        def failed(msg: str) -> None:
            if after is not None:
                after()
            (dialog.finish(msg, error=True) if isinstance(dialog, ExportDialog) else
             (dialog.set_busy(False), dialog.show_error(msg)))
            self.finished.emit(msg)

        def cancelled() -> None:
            if after is not None:
                after()
            dialog.set_busy(False)
            text = "Cancelled: nothing was written" if name == "checking labels" else f"Cancelled {name}"
            (dialog.finish(text) if isinstance(dialog, ExportDialog) else dialog.show_error(text))
            self.finished.emit(text)

        return self.jobs.start(name, _stoppable(work), on_result=done, on_failed=failed,
                               on_progress=dialog.show_progress, on_cancelled=cancelled)

    def _refresh(self, index: int | None) -> None:
        self.projectChanged.emit(index if self.editor.doc is None else None)

    def _say(self, text: str) -> None:
        self.message.emit(text, 12000)
        self.finished.emit(text)
