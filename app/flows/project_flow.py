"""Opening a project folder: the questions on the way, what an earlier session left behind, and the project's own
model once it is shown.

On the way: a training of the project on screen (keep it running in its own project, stop it with the model so
far, or stay), a lock another window holds (open read-only, or take the lock over when that window is gone), a
broken `segassist.json` (start fresh beside it, or not). Left behind: a class change cut short
(`app.core.storage.class_edit.finish_pending`) and journalled strokes (`app.core.storage.recovery`). Then the
folder's current model is loaded, or its absence said, and the notices recorded while it was closed are shown.

The flow gets its dependencies explicitly (the editor, which holds the project; the model service and the model
flow; the training flow; the quit questions; a widget to parent its dialogs) and reports through signals; the
window shows the project on its panels when `shown` fires, before the first image opens.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget


class ProjectFlow(QObject):
    """Opens folders as the editor's project, asking what needs asking."""

    message = Signal(str, int)  # a line for the status bar, and for how long (ms)
    warning = Signal(str, str)  # (title, text) worth a message box
    notice = Signal(str, str, bool)  # (title, text, warning): a box that stays until read
    shown = Signal(object)  # the project now open, to show on the panels (before its first image opens)
    recovered = Signal()  # journalled edits were replayed into label files: image statuses may have changed
    firstImage = Signal(int)  # the first image to open
    opened = Signal()  # the project is open (its model may still be loading)

    def __init__(self, editor, models, model_flow, training, quitting, dialog_parent: QWidget,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.editor, self.models, self.model_flow = editor, models, model_flow
        self.training, self.quitting, self.dialog_parent = training, quitting, dialog_parent

    @property
    def project(self):
        return self.editor.project

    def ask_open(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.dialog_parent, "Open a folder of images",
                                                  self.editor.start_folder())
        if folder:
            self.open(folder)

    def open(self, folder: str | Path) -> bool:
        """Open (or create) the project in `folder`, restore journalled edits, show the first image, and
        load that project's current model (or none). A training of the project on screen asks first: it
        keeps running in its own project, or stops with the model so far, or the folder is not opened."""
        target = Path(folder).expanduser().resolve()
        current = self.project
        leaving = current is not None and current.folder != target
        if leaving and self.training.running and self.training.shown:
            answer = self.quitting.ask_leaving_training(current.folder.name)
            if answer is None:
                return False
            self.training.leave()
            if answer == "stop":
                self.message.emit("Stopping the training run and keeping the model so far…", 0)
                self.training.stop_and_wait()
        self.editor.close_image()
        project = self.training.live_project(target) or self.open_folder(folder)
        if project is None:
            if current is not None:
                self.training.show_project(current)
            return False
        if current is not None and current is not project and current is not self.training.run_project:
            current.close()
        self.finish_class_change(project)
        self.models.clear()  # the last project's model never follows into this one
        self.shown.emit(project)
        recovery = self.restore_journal(project)
        first = next((i for i, e in enumerate(project.images) if not e.error), None)
        if first is not None:
            self.firstImage.emit(first)
        n = len(project.images)
        msg = f"Opened {project.folder}: {n} image{'s' if n != 1 else ''}"
        if recovery.restored:
            msg += (f"; recovered {recovery.strokes} unsaved stroke{'s' if recovery.strokes != 1 else ''} on "
                    f"{len(recovery.restored)} image{'s' if len(recovery.restored) != 1 else ''}")
        if project.note:
            msg += f"; {project.note}"
        self.message.emit(msg, 12000)
        model = project.current_model
        if model is not None and model.is_file():
            self.model_flow.open(model, remember=False)
        elif model is not None:
            self.warning.emit("Model missing", f"{project.project_file}: the current model {model} is missing; no "
                              "model is in use. Choose a version in the Model panel, or open, create or train one.")
        notices = project.take_notices()
        if notices:
            self.notice.emit(f"While {project.folder.name} was closed", "\n\n".join(notices), False)
        self.opened.emit()
        return True

    # -- the questions on the way ------------------------------------------------------------------------
    def ask_locked(self, exc) -> str | None:
        """Another window holds the project's lock: "read-only", "take-over" (that window is gone: on
        another computer, or a process id reused since) or None (cancel)."""
        box = QMessageBox(QMessageBox.Icon.Question, "Project in use",
                          f"{exc}\n\nRead-only writes nothing to this folder (edits can be saved to another "
                          "folder). Take over only when that window is gone: two windows writing one project "
                          "can overwrite each other's labels.", parent=self.dialog_parent)
        read = box.addButton("Open read-only", QMessageBox.ButtonRole.AcceptRole)
        take = box.addButton("Take over the lock", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(read)
        box.exec()
        return {read: "read-only", take: "take-over"}.get(box.clickedButton())

    def open_folder(self, folder: str | Path):
        """`Project.open`, asking about a project in use (read-only, or take over its lock?) or a broken
        project file; None when the folder is not opened (refused, or the person said no)."""
        from app.core.storage.project import Project, ProjectFileError
        from app.core.storage.project_lock import ProjectLockedError

        try:
            try:
                return Project.open(folder)
            except ProjectLockedError as exc:
                choice = self.ask_locked(exc)
                if choice is None:
                    return None
                return Project.open(folder, read_only=True) if choice == "read-only" else \
                    Project.open(folder, take_over=exc.info)
            except ProjectFileError as exc:
                answer = QMessageBox.question(
                    self.dialog_parent, "Broken project file",
                    f"{exc}\n\nStart a fresh project in this folder? The broken file is kept beside it (renamed); "
                    "your images and labels stay as they are.")
                if answer != QMessageBox.StandardButton.Yes:
                    return None
                return Project.open(folder, start_fresh=True)
        except Exception as exc:  # noqa: BLE001 - any reason to refuse a folder is shown to the person
            self.warning.emit("Cannot open the folder", f"{folder}: {exc}")
            return None

    # -- what an earlier session left ---------------------------------------------------------------------
    def finish_class_change(self, project) -> None:
        """Complete a class deletion or reordering that a crash cut short (`app.core.storage.class_edit`)."""
        from app.core.storage.class_edit import finish_pending

        try:
            if finish_pending(project):
                self.message.emit("Completed a class change that was interrupted", 12000)
        except (OSError, ValueError) as exc:
            self.warning.emit("Class change not completed", f"{exc}")

    def restore_journal(self, project):
        """Replay journalled edits (`app.core.storage.recovery`) and tell the person what came back, in a box
        that stays until read (the status bar would be overwritten at once)."""
        from app.core.storage.recovery import restore_journals

        recovery = restore_journals(project)
        self.recovered.emit()
        text = recovery.summary()
        if recovery.problems:
            text += ("\n\n" if text else "") + ("Some unsaved edits from an earlier session could not be restored:\n"
                                                + "\n".join(recovery.problems))
        if text:
            self.notice.emit("Recovered edits" if not recovery.problems else "Recovery journal", text,
                             bool(recovery.problems))
        return recovery
