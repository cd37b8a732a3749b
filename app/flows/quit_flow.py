"""What closing the window (or opening another folder) asks first: about a training run in progress, and
about labels not saved.

The questions are modal: the window closes, or the other folder opens (or not), once they are answered.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget


class QuitQuestions:
    """Asks whether the window may close now, given the editor's unsaved labels and the training flow's run."""

    def __init__(self, editor, training, dialog_parent: QWidget, save_elsewhere: Callable[[], bool]):
        self.editor, self.training, self.dialog_parent = editor, training, dialog_parent
        self.save_elsewhere = save_elsewhere
        self.question: QMessageBox | None = None  # while asking about a running training

    def ask(self) -> bool | None:
        """None when the person chose to stay; otherwise whether a running training keeps its model so far."""
        keep = True
        if self.training.running:
            keep = self.ask_about_training()
            if keep is None:
                return None
        if not self.editor.save_all() and not self.confirm_unsaved():
            return None
        return keep

    def ask_about_training(self) -> bool | None:
        """Stop and keep the model so far (True), cancel the run (False), or keep working (None)."""
        project = getattr(self.training, "run_project", None)
        whose = f" of {project.folder.name}" if project is not None else ""
        box = QMessageBox(QMessageBox.Icon.Question, "Training is running",
                          f"A model{whose} is being trained. Quit anyway?",
                          QMessageBox.StandardButton.NoButton, self.dialog_parent)
        stop = box.addButton("Stop and keep the model so far", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Cancel the training", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Keep working", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(stop)
        self.question = box
        box.exec()
        self.question = None
        if box.clickedButton() not in (stop, discard):
            return None
        return box.clickedButton() is stop

    def ask_leaving_training(self, name: str) -> str | None:
        """Another folder is about to open while project `name` trains: "keep" it running (it is recorded in
        `name` when it ends), "stop" it and keep the model so far, or None to stay."""
        box = QMessageBox(QMessageBox.Icon.Question, "Training is running",
                          f"A model of {name} is being trained. Open the other folder anyway?\n\nA running "
                          f"training belongs to {name}: when it ends, its model is recorded there as a version "
                          "(not made current), and you hear about it the next time you open it.",
                          QMessageBox.StandardButton.NoButton, self.dialog_parent)
        keep = box.addButton("Keep it running", QMessageBox.ButtonRole.AcceptRole)
        stop = box.addButton("Stop and keep the model so far", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(keep)
        self.question = box
        box.exec()
        self.question = None
        clicked = box.clickedButton()
        return "keep" if clicked is keep else "stop" if clicked is stop else None

    def unsaved_text(self) -> str:
        """What quitting now would cost, as the quit dialog says it."""
        in_journal, in_memory = self.editor.unsaved_report()
        parts = ["Some labels could not be saved."]
        if in_journal:
            parts.append(f"The edits of {', '.join(in_journal)} are in the recovery journal and come back the next "
                         "time you open this folder.")
        if in_memory:
            parts.append(f"The edits of {', '.join(in_memory)} are in memory only: the recovery journal could not "
                         "be written either, so quitting now loses them.")
        if not in_journal and not in_memory and self.editor.save_error:
            parts.append(self.editor.save_error)
        return "\n\n".join(parts)

    def confirm_unsaved(self) -> bool:
        """Ask before quitting with unsaved labels; True to quit."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Labels not saved", self.unsaved_text(),
                          QMessageBox.StandardButton.NoButton, self.dialog_parent)
        elsewhere = box.addButton("Save to another folder…", QMessageBox.ButtonRole.ActionRole)
        quit_button = box.addButton("Quit anyway", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is elsewhere:
            return self.save_elsewhere()
        return box.clickedButton() is quit_button
