"""A training run started from the panel: the child process, its events, and what happens after.

Every run is scored on the project's validation images (reviewed images chosen by file name, the same
for every version, never trained on); a fine-tune also re-scores its parent on them in the same run.
On success the new model file becomes a version of the project; it is loaded, made current and the
unlabelled images are segmented with it, unless the selection rule (`app.core.loop.adoption.judge`) finds it
worse than its parent beyond the noise of the validation images: then it is kept as a version, the
parent stays, and the panel offers to use it anyway. On failure (an error, a crash, a
kill) the panel and a message say why and the model in use stays. What a run trains on, its plan and
the recording of its model are `app.core.loop.project_run`'s, shared with the simulated annotator. With the
panel's automatic fine-tune on, a fine-tune starts by itself after every K images marked reviewed.

A run belongs to the project that started it, whatever the window shows later. When the window opens
another folder while it runs (`leave`), the run goes on in its own project, which stays open (and
locked) until the run ends; the panel then shows the other project's state and says where the run
is. A run that ends while its project is not shown is recorded there as a version (never made
current) with a notice the window shows when that project opens next (`Project.add_notice`).

The flow gets its dependencies explicitly (the editor, which holds the project; the model service; the
model flow, which names, opens and lists model versions; the training panel it drives) and reports the
rest through signals; the window wires them to the status bar, the docks and the image list.
"""

from __future__ import annotations

import logging
import shutil
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.core.loop.loop_record import score_text
from app.core.loop.project_run import record_version, run_inputs
from app.core.loop.training_plan import TrainingChoice
from app.services.model_service import ActiveModel
from app.services.training_process import TrainingProcess
from training import outputs
from training.events import DoneEvent, StepEvent

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
        editor.entryChanged.connect(lambda _: self.refresh_run_images())
        panel.useAnyway.connect(self.use_anyway)
        self._out: Path | None = None
        self._quitting = False  # the window is closing: record the outcome, load and segment nothing
        self.program: list[str] | None = None  # replaces `python -m training` (tests use a stand-in)
        self.run_project = None  # the project the running training belongs to
        self.shown = False  # whether the window shows `run_project` (its panel follows the run)
        self._log: deque[str] = deque(maxlen=2000)  # the run's log, shown again when its project is shown again

    @property
    def project(self):
        return self.editor.project

    def _say(self, text: str, ms: int = 6000) -> None:
        self.message.emit(text, ms)

    def _refuse(self, title: str, why: str) -> None:
        """Train was pressed and no run starts: the reason goes where the person looks (the panel's header)
        and into a message box."""
        self.panel.show_outcome(None, why, headline=title)
        self.warning.emit(title, why)

    def start(self, settings: dict) -> None:
        if self.project is None or self.process is not None:
            return
        if not self.editor.save_all():
            self._refuse("Training not started",
                         "The current labels could not be saved; training reads them from disk.")
            return
        labelled = self.project.labelled()
        if not labelled:
            self._refuse("Nothing to train on", "Label at least one image first (paint, fill, or accept a proposal).")
            return
        active = self.models.active
        choice = TrainingChoice.from_settings(settings)
        finetune = choice.mode == "finetune" and active is not None and active.path is not None
        arch = active.loaded.model.config["name"] if finetune else choice.arch
        project = self.project
        try:
            inputs = run_inputs(project, active.path if finetune else None)
        except OSError as exc:
            self._refuse("Training not started", f"Could not write segassist.json: {exc}")
            return
        self.refresh_loop()
        try:
            cfg = inputs.plan(choice, out=self.model_flow.next_path(arch))
        except ValueError as exc:
            self._refuse("Training not started", str(exc))
            return
        self._parent = inputs.init
        self._out = cfg.out
        self.run_project, self.shown = project, True
        self._log.clear()
        self.process = TrainingProcess(cfg, cwd=project.folder, program=self.program, parent=self)
        self.process.event.connect(self._on_event)
        self.process.log.connect(self._on_log)
        self.process.succeeded.connect(self._succeeded)
        self.process.failed.connect(self._failed)
        self.process.finished.connect(self._ended)
        self.panel.set_running(True)
        self.runStarted.emit()
        self._say(f"Training {arch} on {len(labelled)} labelled images…", 0)
        self.process.start()

    def stop(self) -> None:
        if self.process is not None and self.shown:
            self.process.stop()
            self._say("Stopping training after this iteration…", 0)

    # -- which project the run belongs to ---------------------------------------------------------------
    def _on_event(self, event) -> None:
        if self.shown:
            self.panel.on_event(event)
        else:
            self.panel.show_elsewhere(self.elsewhere_text())

    def _on_log(self, line: str) -> None:
        self._log.append(line)
        if self.shown:
            self.panel.append_log(line)

    def live_project(self, folder: str | Path):
        """The project of the running training when it is the one in `folder` (reopened, it is the same
        object, so the run records its outcome where the window shows it), else None."""
        project = self.run_project
        if self.process is None or project is None:
            return None
        return project if project.folder == Path(folder).expanduser().resolve() else None

    def leave(self) -> None:
        """The window is about to show another project: the run goes on, and ends, in its own."""
        self.shown = False

    def show_project(self, project) -> None:
        """The window shows `project` now (its panel has been reset): follow the run again when it is
        this project's, else say where the running training belongs."""
        if self.process is None:
            return
        if project is self.run_project:
            self.shown = True
            self.panel.set_running(True)
            for event in self.process.events:
                self.panel.on_event(event)
            for line in self._log:
                self.panel.append_log(line)
        else:
            self.shown = False
            self.panel.show_elsewhere(self.elsewhere_text())

    def elsewhere_text(self) -> str:
        """What the panel of another project says about the running training."""
        name = self.run_project.folder.name if self.run_project is not None else "another project"
        events = self.process.events if self.process is not None else []
        step = next((e for e in reversed(events) if isinstance(e, StepEvent)), None)
        where = f" ({step.iteration} / {step.iterations} iterations)" if step is not None else ""
        return (f"A training of {name} is running{where}. It belongs to {name}: its model is recorded there "
                "when it ends. One training at a time: Train is available again then.")

    def stop_and_wait(self, wait_ms: int = 60000) -> None:
        """Stop the run now and wait until it has written the model so far (recorded as a version)."""
        process = self.process
        if process is None:
            return
        process.stop()
        if not process.wait(wait_ms):
            process.kill()
            process.wait(5000)

    def _succeeded(self, done: DoneEvent) -> None:
        path = Path(done.model_path or "")
        if not path.is_file():
            self._failed(f"the training process reported {path}, which does not exist")
            return
        parent, project, shown = self._parent, self.run_project, self.shown
        verdict = record_version(project, done, parent=parent)  # a version, never made current here
        worse = not verdict.adopt
        if not shown:
            self._recorded_away(project, path, done)
            return
        self.panel.show_outcome(done, parent=parent.stem if parent else None, verdict=verdict)
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

    def _recorded_away(self, project, path: Path, done: DoneEvent) -> None:
        """A run ended while the window showed another project: its version waits in its own project."""
        score = score_text(done.miou, len(done.val_names)) + (", stopped early" if done.stopped else "")
        short = f" (mIoU {done.miou:.3f})" if done.miou is not None else ""
        try:
            project.add_notice(f"A training of this project ended while another folder was open: {path.stem} "
                               f"({score}) is recorded as a version and is not in use. Double-click it in the "
                               "Model panel's versions to use it.")
        except OSError as exc:
            log.warning("%s: cannot keep the notice about %s: %s", project.folder, path.name, exc)
        if not self._quitting:
            self._say(f"The training of {project.folder.name} ended: {path.stem}{short} is recorded there as a "
                      "version", 20000)
            self.finished.emit(False)

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
        self.panel.show_used_anyway(Path(path).stem)
        self._say(f"Using {Path(path).name}; segmenting the unlabelled images with it", 0)
        self._adopt(Path(path))

    # -- the validation set, the correction record, automatic fine-tunes ------------------------------
    def refresh_loop(self) -> None:
        """Show the validation set (image list, panel) and the corrections per image by version."""
        if self.project is None:
            return
        if not (self.project.read_only and self.project.write_folder is None):
            try:  # grown from the reviewed images now, not only at the next Train (never a stale "not measurable")
                self.project.validation_names()
            except OSError as exc:
                self.warning.emit("Project not saved", f"Could not write segassist.json: {exc}")
        names = self.project.loop.validation
        self.validationChanged.emit(list(names))
        self.panel.set_validation(self.project.loop.run_names([e.name for e in self.project.labelled()]))
        self.panel.set_corrections(self.project.loop.by_version())
        self.refresh_run_images()

    def refresh_run_images(self) -> None:
        """Tell the panel how many images the next run trains and validates on."""
        if self.project is None:
            return
        labelled = [e.name for e in self.project.labelled()]
        self.panel.set_run_images(len(labelled), len(self.project.loop.run_names(labelled)))

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
            self._say(f"{self.panel.auto_interval()} images reviewed: fine-tuning the current model…", 0)
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
        every = self.panel.auto_interval()
        return every is not None and self.process is None and self.reviewed_since_training() >= every

    def _failed(self, why: str) -> None:
        prev = self.models.active
        keep = f"The model in use stays {prev.info()['name']}." if prev else ""
        if self._quitting:
            return
        if not self.shown:
            name = self.run_project.folder.name if self.run_project is not None else "another project"
            stopped = self.process is not None and self.process.stop_requested
            self._say(f"The training of {name} " + ("stopped before a model was written" if stopped else
                                                    f"failed: {why.splitlines()[0]}"), 20000)
            self.finished.emit(False)
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
            shutil.rmtree(outputs.checkpoint_dir(self._out), ignore_errors=True)
        self.process.deleteLater()
        self.process = None
        project, self.run_project = self.run_project, None
        if not self.shown:
            if project is not None and project is not self.project:
                project.close()  # kept open (and locked) for the run alone
            if self.project is not None and not self._quitting:
                self.panel.show_elsewhere(None)
        self.shown = False

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
            outputs.remove_outputs(out)
