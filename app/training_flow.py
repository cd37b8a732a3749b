"""A training run started from the panel: the child process, its events, and what happens after.

Every run is scored on the project's validation images (reviewed images chosen by file name, the same
for every version, never trained on); a fine-tune also re-scores its parent on them in the same run.
On success the new model file becomes a version of the project; it is loaded, made current and the
unlabelled images are segmented with it, unless the selection rule (`app.core.adoption.judge`) finds it
worse than its parent beyond the noise of the validation images: then it is kept as a version, the
parent stays, and the panel offers to use it anyway. On failure (an error, a crash, a
kill) the panel and a message say why and the model in use stays. With the panel's automatic
fine-tune on, a fine-tune starts by itself after every K images marked reviewed.

The flow gets its dependencies explicitly (the editor, which holds the project; the model service; the
model flow, which names, opens and lists model versions; the training panel it drives) and reports the
rest through signals; the window wires them to the status bar, the docks and the image list.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.core.adoption import judge
from app.core.training_plan import TrainingChoice, changed_since, plan_training
from app.model_service import ActiveModel
from app.training_process import TrainingProcess
from training.events import DoneEvent

log = logging.getLogger(__name__)


class TrainingFlow(QObject):
    """Starts, follows and finishes training runs from the training panel; one at a time."""

    finished = Signal(bool)  # True once the new model is loaded; False when the run failed or was not adopted
    message = Signal(str, int)   # a line for the status bar, and for how long (ms; 0 = until replaced)
    warning = Signal(str, str)   # (title, text) worth a message box
    runStarted = Signal()        # a training run has started (show its panel)
    validationChanged = Signal(list)  # the names of the project's validation images
    segmentUnlabelled = Signal()  # a new model is in use: segment the images nobody has labelled yet

    def __init__(self, editor, models, model_flow, panel, parent: QObject | None = None):
        super().__init__(parent)
        self.editor, self.models, self.model_flow, self.panel = editor, models, model_flow, panel
        self.process: TrainingProcess | None = None
        self._parent: Path | None = None
        self._auto_since: datetime | None = None  # when the last automatic fine-tune started
        editor.reviewed.connect(self._reviewed)
        panel.useAnyway.connect(self.use_anyway)
        self._out: Path | None = None
        self._quitting = False  # the window is closing: record the outcome, load and segment nothing

    @property
    def project(self):
        return self.editor.project

    def _say(self, text: str, ms: int = 6000) -> None:
        self.message.emit(text, ms)

    def start(self, settings: dict) -> None:
        if self.project is None or self.process is not None:
            return
        if not self.editor.save_all():
            self.warning.emit("Training not started",
                              "The current labels could not be saved; training reads them from disk.")
            return
        labelled = self.project.labelled()
        if not labelled:
            self.warning.emit("Nothing to train on",
                              "Label at least one image first (paint, fill, or accept a proposal).")
            return
        active = self.models.active
        choice = TrainingChoice.from_settings(settings)
        finetune = choice.mode == "finetune" and active is not None and active.path is not None
        arch = active.loaded.model.config["name"] if finetune else choice.arch
        project = self.project
        label_paths = [project.label_path(e) for e in labelled]
        try:
            val_names = project.run_validation_names()
        except OSError as exc:
            self.warning.emit("Training not started", f"Could not write segassist.json: {exc}")
            return
        self.refresh_loop()
        try:
            cfg = plan_training(
                replace(choice, mode="finetune" if finetune else "new"), images=project.folder,
                labels=project.labels_dir, classes=project.classes, out=self.model_flow.next_path(arch),
                labelled=len(labelled), init=active.path if finetune else None, val_names=val_names,
                focus_names=changed_since(label_paths, active.path) if finetune else ())
        except ValueError as exc:
            self.warning.emit("Training not started", str(exc))
            return
        self._parent = active.path if finetune else None
        self._out = cfg.out
        self.process = TrainingProcess(cfg, cwd=project.folder, parent=self)
        self.process.event.connect(self.panel.on_event)
        self.process.log.connect(self.panel.append_log)
        self.process.succeeded.connect(self._succeeded)
        self.process.failed.connect(self._failed)
        self.process.finished.connect(self._ended)
        self.panel.set_running(True)
        self.runStarted.emit()
        self._say(f"Training {arch} on {len(labelled)} labelled images…", 0)
        self.process.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self._say("Stopping training after this iteration…", 0)

    def _succeeded(self, done: DoneEvent) -> None:
        path = Path(done.model_path or "")
        if not path.is_file():
            self._failed(f"the training process reported {path}, which does not exist")
            return
        parent = self._parent
        verdict = judge(done)
        worse = parent is not None and not verdict.adopt
        self.panel.show_outcome(done, parent=parent.stem if parent else None, verdict=verdict)
        try:
            self.project.add_model_version(path, miou=done.miou, val_images=len(done.val_names), select=False,
                                        parent=parent.name if parent else None)
        except Exception as exc:  # noqa: BLE001 - the model is on disk; the version list is bookkeeping
            log.warning("cannot record model version %s: %s", path, exc)
        if self._quitting:
            return
        self.model_flow.refresh_versions()
        if worse:
            beyond = " beyond their noise" if verdict.paired else ""
            self._say(f"{path.stem} is worse than {parent.stem} on the same {verdict.images} images{beyond}: kept "
                      f"as a version, {parent.stem} stays in use", 0)
            self.finished.emit(False)
            return
        self._say(f"Training done: {path.name}; loading it and segmenting the unlabelled images", 0)
        self._adopt(path)

    def _adopt(self, path: Path) -> None:
        """Load `path`, make it the current version and segment the unlabelled images with it."""

        def loaded(active: ActiveModel) -> None:
            self.finished.emit(True)
            self.segmentUnlabelled.emit()

        self.model_flow.open(path, then=loaded)

    def use_anyway(self, path: str) -> None:
        """The person chose a version the rule found worse than its parent: it becomes current after all."""
        if not path or not Path(path).is_file():
            return
        self.panel.use_button.setVisible(False)
        self.panel.result.setText(f"{Path(path).stem} is used (chosen although it did worse than its parent)")
        self._say(f"Using {Path(path).name}; segmenting the unlabelled images with it", 0)
        self._adopt(Path(path))

    # -- the validation set, the correction record, automatic fine-tunes ------------------------------
    def refresh_loop(self) -> None:
        """Show the validation set (image list, panel) and the corrections per image by version."""
        if self.project is None:
            return
        names = self.project.loop.validation
        self.validationChanged.emit(list(names))
        self.panel.set_validation(self.project.loop.run_names([e.name for e in self.project.labelled()]))
        self.panel.set_corrections(self.project.loop.by_version())

    def set_validation(self, index: int, member: bool) -> None:
        if self.project is None:
            return
        entry = self.project.images[index]
        try:
            self.project.set_validation_member(entry, member)
        except OSError as exc:
            self.warning.emit("Project not saved", f"Could not write segassist.json: {exc}")
        self.refresh_loop()
        self._say(f"{entry.name} {'is now a validation image' if member else 'is no longer a validation image'}")

    def _reviewed(self, index: int) -> None:
        try:
            self.project.validation_names()
        except OSError as exc:
            self.warning.emit("Project not saved", f"Could not write segassist.json: {exc}")
        self.refresh_loop()
        if self.auto_due():
            self._auto_since = datetime.now(UTC)
            self._say(f"{self.panel.auto_every.value()} images reviewed: fine-tuning the current model…", 0)
            self.start({**self.panel.settings(), "mode": "finetune"})

    def reviewed_since_training(self) -> int:
        """Images marked reviewed since the current model was written (and since the last automatic start)."""
        active = self.models.active
        if self.project is None or active is None or active.path is None or not active.path.is_file():
            return 0
        since = datetime.fromtimestamp(active.path.stat().st_mtime, UTC).replace(microsecond=0)
        if self._auto_since is not None:
            since = max(since, self._auto_since.replace(microsecond=0))
        return sum(1 for c in self.project.loop.corrections.values()
                   if c.reviewed and datetime.fromisoformat(c.reviewed) >= since)

    def auto_due(self) -> bool:
        """Whether an automatic fine-tune should start now."""
        panel = self.panel
        return (panel.auto.isChecked() and self.process is None
                and self.reviewed_since_training() >= panel.auto_every.value())

    def _failed(self, why: str) -> None:
        prev = self.models.active
        keep = f"The model in use stays {prev.info()['name']}." if prev else ""
        if self._quitting:
            return
        if self.process is not None and self.process.stop_requested:  # the person stopped it: not a failure
            self.panel.show_outcome(None, f"Stopped before a model was written. {keep}",
                                          headline="Training stopped")
            self._say(f"Training stopped before a model was written. {keep}")
        else:
            self.panel.show_outcome(None, why)
            self.warning.emit("Training failed", why + (f"\n\n{keep}" if keep else ""))
        self.finished.emit(False)

    def _ended(self) -> None:
        if self._out is not None:  # resumable checkpoints: the app never resumes from them
            shutil.rmtree(self._out.with_name(self._out.name + ".ckpt"), ignore_errors=True)
        self.process.deleteLater()
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None

    def shutdown(self, keep: bool = True, wait_ms: int = 60000) -> None:
        """On quit: stop a running child and wait for it (no process outlives the window). With `keep` it
        writes the model so far, recorded as a version; without, the run and its files are removed."""
        process, out = self.process, self._out
        if process is None:
            return
        self._quitting = True
        if keep:
            process.stop()
        else:
            process.kill()
        if not process.wait(wait_ms):
            process.kill()
            process.wait(5000)
        if self.process is not None:  # finished was not delivered while waiting
            self._ended()
        if not keep and out is not None:
            out.unlink(missing_ok=True)
            out.with_name(f"{out.stem}.best{out.suffix}").unlink(missing_ok=True)
