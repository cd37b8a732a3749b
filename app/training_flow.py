"""A training run started from the panel: the child process, its events, and what happens after.

On success the new model file becomes a version of the project, is loaded and selected, and the
unlabelled images are segmented with it. On failure (an error, a crash, a kill) the panel and a
message say why and the model in use stays.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.core.training_plan import TrainingChoice, changed_since, plan_training
from app.model_service import ActiveModel
from app.training_process import TrainingProcess
from training.events import DoneEvent

log = logging.getLogger(__name__)


class TrainingFlow(QObject):
    """Starts, follows and finishes training runs of main window `w`; one at a time."""

    finished = Signal(bool)  # True once the new model is loaded, False when the run failed

    def __init__(self, w):
        super().__init__(w)
        self.w = w
        self.process: TrainingProcess | None = None
        self._parent: Path | None = None
        self._out: Path | None = None
        self._quitting = False  # the window is closing: record the outcome, load and segment nothing

    def start(self, settings: dict) -> None:
        w = self.w
        if w.project is None or self.process is not None:
            return
        if not w.editor.save_all():
            w.warn("Training not started", "The current labels could not be saved; training reads them from disk.")
            return
        labelled = w.project.labelled()
        if not labelled:
            w.warn("Nothing to train on", "Label at least one image first (paint, fill, or accept a proposal).")
            return
        active = w.models.active
        choice = TrainingChoice.from_settings(settings)
        finetune = choice.mode == "finetune" and active is not None and active.path is not None
        arch = active.loaded.model.config["name"] if finetune else choice.arch
        project = w.project
        label_paths = [project.label_path(e) for e in labelled]
        try:
            cfg = plan_training(
                replace(choice, mode="finetune" if finetune else "new"), images=project.folder,
                labels=project.labels_dir, classes=project.classes, out=w.model_flow.next_path(arch),
                labelled=len(labelled), init=active.path if finetune else None,
                focus_names=changed_since(label_paths, active.path) if finetune else ())
        except ValueError as exc:
            w.warn("Training not started", str(exc))
            return
        self._parent = active.path if finetune else None
        self._out = cfg.out
        self.process = TrainingProcess(cfg, cwd=project.folder, parent=self)
        self.process.event.connect(w.training_panel.on_event)
        self.process.log.connect(w.training_panel.append_log)
        self.process.succeeded.connect(self._succeeded)
        self.process.failed.connect(self._failed)
        self.process.finished.connect(self._ended)
        w.training_panel.set_running(True)
        w.training_dock.raise_()
        w.say(f"Training {arch} on {len(labelled)} labelled images…", 0)
        self.process.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.w.say("Stopping training after this iteration…", 0)

    def _succeeded(self, done: DoneEvent) -> None:
        w = self.w
        path = Path(done.model_path or "")
        if not path.is_file():
            self._failed(f"the training process reported {path}, which does not exist")
            return
        w.training_panel.show_outcome(done)
        try:
            w.project.add_model_version(path, miou=done.last_miou, select=False,
                                        parent=self._parent.name if self._parent else None)
        except Exception as exc:  # noqa: BLE001 - the model is on disk; the version list is bookkeeping
            log.warning("cannot record model version %s: %s", path, exc)
        if self._quitting:
            return
        w.model_flow.refresh_versions()
        w.say(f"Training done: {path.name}; loading it and segmenting the unlabelled images", 0)

        def loaded(active: ActiveModel) -> None:
            self.finished.emit(True)
            w.segmenting.unlabelled()

        w.model_flow.open(path, then=loaded)

    def _failed(self, why: str) -> None:
        w = self.w
        prev = w.models.active
        keep = f"The model in use stays {prev.info()['name']}." if prev else ""
        if self._quitting:
            return
        if self.process is not None and self.process.stop_requested:  # the person stopped it: not a failure
            w.training_panel.show_outcome(None, f"Stopped before a model was written. {keep}",
                                          headline="Training stopped")
            w.say(f"Training stopped before a model was written. {keep}")
        else:
            w.training_panel.show_outcome(None, why)
            w.warn("Training failed", why + (f"\n\n{keep}" if keep else ""))
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
