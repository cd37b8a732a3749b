"""A project's training run, before and after: what it trains, validates and focuses on, and its model
recorded as a version with the selection rule's verdict.

The Training panel's flow (`app.flows.training_flow`) and the simulated annotator (`bench.annotator`) both go
through here, so the loop the benchmark measures is the loop a person runs:

    inputs = run_inputs(project, init)        # labelled images, validation names, images changed since init
    cfg = inputs.plan(choice, out=...)        # `plan_training`: the TrainConfig of the run
    done, why = <the child process>           # `training.child` (a QProcess in the app)
    verdict = record_version(project, done, parent=init)   # `adoption.judge`, and a new version
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from app.core.loop.adoption import Verdict, judge
from app.core.loop.training_plan import TrainingChoice, changed_since, plan_training
from training.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInputs:
    """The images of a project's next run: `labelled` (its training set, validation images included),
    `val_names` (scored on, never trained on) and `focus_names` (corrected since `init` was written)."""

    images: Path
    labels: Path
    classes: tuple
    labelled: tuple[str, ...]
    val_names: tuple[str, ...]
    focus_names: tuple[str, ...]
    init: Path | None  # the model a fine-tune starts from; None: a new model

    def plan(self, choice: TrainingChoice, *, out: Path) -> TrainConfig:
        """The run of `choice` on these images, written to `out`: a fine-tune of `init` when there is one,
        else a new model (whatever `choice.mode` says)."""
        mode = "finetune" if self.init is not None else "new"
        return plan_training(dataclasses.replace(choice, mode=mode), images=self.images, labels=self.labels,
                             classes=self.classes, out=out, labelled=len(self.labelled), init=self.init,
                             val_names=self.val_names, focus_names=self.focus_names)


def run_inputs(project, init: Path | None = None) -> RunInputs:
    """The inputs of `project`'s next run, a fine-tune of `init` or (None) a new model. Grows the validation
    set from the reviewed images first (which writes segassist.json when it changed: `OSError`)."""
    labelled = project.labelled()
    val_names = project.run_validation_names()
    focus = changed_since([project.label_path(e) for e in labelled], init) if init is not None else ()
    return RunInputs(Path(project.folder), Path(project.labels_dir), tuple(project.classes),
                     tuple(e.name for e in labelled), tuple(val_names), tuple(focus),
                     Path(init) if init is not None else None)


def record_version(project, done, *, parent: Path | None) -> Verdict:
    """The selection rule's verdict on a finished run (`training.events.DoneEvent`), whose model is recorded
    as a version of `project` (not made current: the caller does that when it adopts it). With no `parent`
    the verdict always adopts. A version that cannot be recorded is logged: the model file is on disk, the
    version list is bookkeeping."""
    verdict = judge(done)
    if parent is None:
        verdict = dataclasses.replace(verdict, adopt=True)
    try:
        project.add_model_version(Path(done.model_path), miou=done.miou, val_images=len(done.val_names),
                                  select=False, parent=Path(parent).name if parent is not None else None)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.warning("cannot record model version %s: %s", done.model_path, exc)
    return verdict
