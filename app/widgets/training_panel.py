"""The training panel: settings, start/stop, progress with ETA, live loss and mIoU curves, the outcome (with
the choice to use a version the rule found worse than its parent), and the person's corrections per image by version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.loop.adoption import Verdict, judge
from app.core.loop.eta import EtaEstimate
from app.core.loop.loop_record import NOT_MEASURABLE
from app.core.loop.run_images import RunImages
from app.widgets.backbone_weights import BUNDLED_BACKBONE, BackboneWeightsChoice
from app.widgets.icons import icon
from training.events import DoneEvent, Event, StartEvent, StepEvent, ValidationEvent

pg.setConfigOptions(antialias=True, background=(32, 34, 38), foreground=(170, 176, 184))
VERSION_COLORS = ((86, 156, 240), (110, 200, 120), (240, 170, 70), (200, 110, 200), (90, 200, 200), (230, 90, 90))


def format_seconds(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _spin(lo: int, hi: int, value: int, step: int = 1, tip: str = "") -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setSingleStep(step)
    s.setValue(value)
    s.setToolTip(tip)
    return s


def _narrow(combo: QComboBox) -> QComboBox:
    """A combo box whose width does not follow its longest entry (long backbone names would widen the panel)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(8)
    return combo


class TrainingPanel(QWidget):
    """Emits `startRequested(settings)` and `stopRequested`; `on_event` feeds it the child's events."""

    startRequested = Signal(dict)
    stopRequested = Signal()
    useAnyway = Signal(str)  # the path of a version the rule found worse than its parent, to be used all the same
    autoChanged = Signal()  # the automatic fine-tune was switched or its interval changed
    settingsEdited = Signal()  # the person changed a setting the project remembers (`remembered()`)

    DEFAULTS = {"iters": 0, "crop": 128, "batch": 4, "lr": 0.0, "auto": False, "auto_every": 10, "device": "auto",
                "precision": "auto"}

    def __init__(self, parent=None):
        super().__init__(parent)
        self.finetune = QRadioButton("Fine-tune the current model")
        self.new = QRadioButton("Train a new model")
        self.finetune.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.finetune)
        group.addButton(self.new)
        self.arch = _narrow(QComboBox())
        self.arch.setToolTip("Architecture of the new model")
        self.backbone = _narrow(QComboBox())
        self.backbone.setEditable(True)
        self.backbone.setToolTip("timm backbone name of the new model")
        self.weights = BackboneWeightsChoice()
        for combo in self.weights.findChildren(QComboBox):  # long choice texts must not widen the panel
            _narrow(combo)
        self.backbone.currentTextChanged.connect(self.weights.set_backbone)
        self.weights.failed.connect(self._weights_failed)
        self.weights.useBundled.connect(self.use_backbone)
        self.options = QLineEdit()
        self.options.setPlaceholderText("e.g. output_stride=8 channels=128")
        self.options.setToolTip("Architecture options of the new model, as key=value pairs separated by spaces")
        self.new.toggled.connect(self._mode_changed)
        self.iters = _spin(0, 1_000_000, 0, 50, "Training iterations (optimizer steps); 'auto' sizes the run to "
                           "the labelled images (and a fine-tune to the ones corrected since the model was trained)")
        self.iters.setSpecialValueText("auto")
        self.crop = _spin(32, 4096, 128, 32, "Side of the square crops trained on, in pixels")
        self.batch = _spin(1, 256, 4, 1, "Crops per step")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(0.0, 1.0)
        self.lr.setSingleStep(0.001)
        self.lr.setSpecialValueText("default")
        self.lr.setValue(0.0)
        self.lr.setToolTip("Peak learning rate; 'default' lets the training module choose per architecture")
        self.validation = QLabel(NOT_MEASURABLE)
        self.validation.setWordWrap(True)
        self.validation.setToolTip("The most recently reviewed images when the set grows (change them in the image "
                                   "list's context menu); every version is scored on them and none is trained on them")
        self.auto = QCheckBox("Fine-tune automatically")
        self.auto.setToolTip("Start a fine-tune of the current model in the background after this many images "
                             "were marked reviewed; a result that scores below its parent is kept but not used")
        self.auto_every = _spin(1, 1000, 10, 1, "Reviewed images between automatic fine-tunes")
        self.auto_every.setSuffix(" reviewed images")
        self.auto_every.valueChanged.connect(
            lambda n: self.auto_every.setSuffix(" reviewed image" if n == 1 else " reviewed images"))
        self.auto.toggled.connect(lambda _: self.autoChanged.emit())
        self.auto_every.valueChanged.connect(lambda _: self.autoChanged.emit())
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.precision = QComboBox()
        self.precision.addItems(["auto", "fp32", "bf16", "fp16"])

        form = QFormLayout()
        form.addRow(self.finetune)
        form.addRow(self.new)
        form.addRow("Architecture", self.arch)
        form.addRow("Backbone", self.backbone)
        form.addRow("Backbone weights", self.weights)
        form.addRow("Options", self.options)
        form.addRow("Iterations", self.iters)
        form.addRow("Crop", self.crop)
        form.addRow("Batch", self.batch)
        form.addRow("Learning rate", self.lr)
        form.addRow("Validation", self.validation)
        form.addRow(self.auto)
        form.addRow("Every", self.auto_every)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)
        self._form = form
        self.settings_box = QGroupBox()
        self.settings_box.setLayout(form)
        self.settings_toggle = QToolButton()
        self.settings_toggle.setCheckable(True)
        self.settings_toggle.setChecked(True)
        self.settings_toggle.toggled.connect(self._toggle_settings)
        self._toggle_settings(True)

        self.start_button = QPushButton(icon("train"), "Train")
        self.start_button.setProperty("accent", True)
        self.start_button.setToolTip("Train on the labelled images in a separate process")
        self.start_button.clicked.connect(self._start_clicked)
        self.stop_button = QPushButton(icon("stop"), "Stop")
        self.stop_button.setToolTip("Stop after the current iteration and keep the model so far")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stopRequested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)

        self.progress = QProgressBar()
        self.progress.setFormat("")  # "%v / %m" once a run starts
        self.progress.setValue(0)
        self.status = QLabel("Ready. Label a few images, then train.")
        self.status.setProperty("hint", True)
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(2 * self.status.fontMetrics().lineSpacing() + 4)  # wrapped lines stay whole
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.rate = QLabel()  # "ETA 3:20 · 12.3 img/s · loss 0.412" on one line, never wrapped; hidden when idle
        self.rate.setProperty("hint", True)
        self.rate.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.eta = EtaEstimate()
        self.rate.setVisible(False)
        self.result = QLabel()
        self.result.setProperty("title", True)
        self.result.setVisible(False)
        self.result.setWordWrap(True)
        self.result.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.use_button = QPushButton("Use it anyway")
        self.use_button.setToolTip("Make the new version current although it did worse than its parent on the "
                                   "validation images")
        self.use_button.setVisible(False)
        self.use_button.clicked.connect(lambda: self.useAnyway.emit(self._rejected or ""))
        self._rejected: str | None = None
        self.elsewhere: str | None = None  # what a training of another project that is running says here
        # Offered in the header when the chosen ImageNet weights cannot be had (offline): the installed ones.
        self.bundled_button = QPushButton(f"Use {BUNDLED_BACKBONE} (installed ImageNet)")
        self.bundled_button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # never widens it
        self.bundled_button.setToolTip("A new model with the backbone whose ImageNet weights come with SegAssist")
        self.bundled_button.setVisible(False)
        self.bundled_button.clicked.connect(lambda: self.use_backbone(BUNDLED_BACKBONE))
        # Before Train: how many images the run trains and validates on (a warning when too few).
        self.run_images = QLabel()
        self.run_images.setWordWrap(True)
        self.run_images.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._run_counts = RunImages(0, 0)

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setMinimumHeight(300)  # three compact charts; the settings above them stay in view
        self.plots.setMinimumWidth(120)
        self.plots.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
        self.loss_plot = self.plots.addPlot(row=0, col=0, title="loss")
        self.miou_plot = self.plots.addPlot(row=1, col=0, title="validation mIoU")
        self.miou_plot.setYRange(0, 1)
        self.corrections_plot = self.plots.addPlot(row=2, col=0, title="corrections per image (% pixels)")
        self.corrections_plot.setLabel("bottom", "images reviewed")
        self.corrections_legend = self.corrections_plot.addLegend(offset=(-4, 4), labelTextSize="8pt")
        for p in (self.loss_plot, self.miou_plot, self.corrections_plot):
            p.showGrid(x=True, y=True, alpha=0.15)
            p.setMenuEnabled(False)
            p.setMouseEnabled(x=False, y=False)
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen((86, 156, 240), width=1.5))
        self.miou_curve = self.miou_plot.plot(pen=pg.mkPen((110, 200, 120), width=2), symbol="o", symbolSize=5,
                                              symbolBrush=(110, 200, 120))
        self.log_toggle = QToolButton()
        self.log_toggle.setText("Log ▸")
        self.log_toggle.setCheckable(True)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setVisible(False)
        self.log_toggle.toggled.connect(self._toggle_log)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.rate)
        layout.addWidget(self.result)
        layout.addWidget(self.use_button)
        layout.addWidget(self.status)
        layout.addWidget(self.bundled_button)
        layout.addWidget(self.run_images)
        layout.addWidget(self.settings_toggle)
        layout.addWidget(self.settings_box)
        layout.addWidget(self.plots, 1)
        layout.addWidget(self.log_toggle)
        layout.addWidget(self.log, 1)
        self._reset_curves()
        self._mode_changed(False)
        self._restoring = False
        for spin in (self.iters, self.crop, self.batch, self.auto_every):
            spin.valueChanged.connect(self._edited)
        self.lr.valueChanged.connect(self._edited)
        self.auto.toggled.connect(self._edited)
        for combo in (self.device, self.precision, self.arch, self.backbone):
            combo.currentTextChanged.connect(self._edited)

    # -- settings -------------------------------------------------------------------------------------
    def set_architectures(self, names: Sequence[str], backbones: dict[str, Sequence[str]],
                          default: dict[str, str] | None = None) -> None:
        """The architectures to offer, suggested backbones per architecture, and the one to preselect."""
        self._backbones = {k: list(v) for k, v in backbones.items()}
        self._default_backbone = dict(default or {})
        self.arch.clear()
        self.arch.addItems(list(names))
        self.arch.currentTextChanged.connect(self._arch_changed)
        if "deeplabv3plus" in names:
            self.arch.setCurrentText("deeplabv3plus")
        self._arch_changed(self.arch.currentText())

    def _arch_changed(self, name: str) -> None:
        self.backbone.clear()
        self.backbone.addItems(getattr(self, "_backbones", {}).get(name, []))
        if name in getattr(self, "_default_backbone", {}):
            self.backbone.setCurrentText(self._default_backbone[name])

    def _mode_changed(self, new: bool) -> None:
        for w in (self.arch, self.backbone, self.weights, self.options):
            w.setEnabled(new)
            self._form.labelForField(w).setEnabled(new)
        self._show_run_images()

    def use_backbone(self, name: str) -> None:
        """A new model with backbone `name` and ImageNet weights (DeepLabV3+ when the architecture cannot take
        it): what the offer of the installed weights does."""
        self.new.setChecked(True)
        if name not in getattr(self, "_backbones", {}).get(self.arch.currentText(), []):
            self.arch.setCurrentText("deeplabv3plus")
        self.backbone.setCurrentText(name)
        self.weights.set_value(True)
        self.bundled_button.setVisible(False)
        self.result.setVisible(False)
        self.status.setText(f"{name} with its installed ImageNet weights: press Train.")

    def _weights_failed(self, message: str) -> None:
        """The weights of a new model cannot be had (offline, cancelled): said here, where the person looks."""
        self.result.setText("Training not started")
        self.result.setVisible(True)
        self.use_button.setVisible(False)
        self.status.setText(message)
        self.bundled_button.setVisible(self.weights.bundled_button.isVisibleTo(self.weights))

    def set_run_images(self, labelled: int, validation: int) -> None:
        """The labelled images there are and how many of them the next run validates on."""
        self._run_counts = RunImages.of(labelled, validation)
        self._show_run_images()

    def _show_run_images(self) -> None:
        if not hasattr(self, "run_images"):
            return
        counts, new = self._run_counts, self.new.isChecked()
        self.run_images.setText(counts.text(new))
        self.run_images.setStyleSheet("color: #e0a040;" if counts.too_few(new) else "")
        self.run_images.setProperty("warning", counts.too_few(new))

    def _start_clicked(self) -> None:
        # A new model from ImageNet weights waits for them (downloaded here, with progress and cancel).
        self.bundled_button.setVisible(False)
        if self.new.isChecked():
            self.weights.ensure_ready(lambda: self.startRequested.emit(self.settings()))
        else:
            self.startRequested.emit(self.settings())

    def set_can_finetune(self, can: bool) -> None:
        """With a model in use, fine-tuning it is the default; without one, only a new model can be trained."""
        was = self.finetune.isEnabled()
        self.finetune.setEnabled(can)
        if not can:
            self.new.setChecked(True)
        elif not was:
            self.finetune.setChecked(True)

    def settings(self) -> dict:
        return {
            "mode": "new" if self.new.isChecked() else "finetune",
            "arch": self.arch.currentText() or None,
            "backbone": self.backbone.currentText().strip() or None,
            "pretrained": self.weights.value() if self.new.isChecked() else False,
            "options": self.options.text().split(),
            "iters": self.iters.value() or None, "crop": self.crop.value(), "batch": self.batch.value(),
            "lr": self.lr.value() or None,
            "device": self.device.currentText(), "precision": self.precision.currentText(),
        }

    def set_settings(self, s: dict) -> None:
        if s.get("mode") == "new":
            self.new.setChecked(True)
        if "pretrained" in s:
            self.weights.set_value(s["pretrained"])
        for key, spin in (("iters", self.iters), ("crop", self.crop), ("batch", self.batch)):
            if s.get(key):
                spin.setValue(int(s[key]))
        if s.get("lr"):
            self.lr.setValue(float(s["lr"]))

    def _edited(self, *_) -> None:
        if not self._restoring:
            self.settingsEdited.emit()

    def remembered(self) -> dict:
        """The settings a project keeps in its segassist.json (restored when it opens)."""
        return {"arch": self.arch.currentText() or None, "backbone": self.backbone.currentText().strip() or None,
                "iters": self.iters.value(), "crop": self.crop.value(), "batch": self.batch.value(),
                "lr": self.lr.value(), "auto": self.auto.isChecked(), "auto_every": self.auto_every.value(),
                "device": self.device.currentText(), "precision": self.precision.currentText()}

    def restore(self, saved: dict) -> None:
        """Show a project's remembered settings; what it does not say goes back to the defaults (never the
        previous project's). Values that do not fit are ignored."""
        s = {**self.DEFAULTS, **{k: v for k, v in (saved or {}).items() if v is not None}}
        self._restoring = True
        try:
            if s.get("arch") and self.arch.findText(str(s["arch"])) >= 0:
                self.arch.setCurrentText(str(s["arch"]))
            elif self.arch.findText("deeplabv3plus") >= 0:
                self.arch.setCurrentText("deeplabv3plus")
            self._arch_changed(self.arch.currentText())
            if s.get("backbone"):
                self.backbone.setCurrentText(str(s["backbone"]))
            for key, spin in (("iters", self.iters), ("crop", self.crop), ("batch", self.batch),
                              ("auto_every", self.auto_every)):
                if isinstance(s[key], int | float) and not isinstance(s[key], bool):
                    spin.setValue(int(s[key]))
            if isinstance(s["lr"], int | float) and not isinstance(s["lr"], bool):
                self.lr.setValue(float(s["lr"]))
            self.auto.setChecked(bool(s["auto"]))
            for key, combo in (("device", self.device), ("precision", self.precision)):
                if combo.findText(str(s[key])) >= 0:
                    combo.setCurrentText(str(s[key]))
        finally:
            self._restoring = False

    # -- a run ----------------------------------------------------------------------------------------
    def _reset_curves(self) -> None:
        self._loss: tuple[list, list] = ([], [])
        self._miou: tuple[list, list] = ([], [])
        self.loss_curve.setData([], [])
        self.miou_curve.setData([], [])
        self.loss_plot.setRange(xRange=(0, 10), yRange=(0, 1), padding=0)  # not the last run's axes
        self.miou_plot.setXRange(0, 10, padding=0)
        for plot in (self.loss_plot, self.miou_plot):
            plot.enableAutoRange(axis="x")
        self.loss_plot.enableAutoRange(axis="y")
        self.miou_before: float | None = None

    def reset(self) -> None:
        """Forget the last run (another project was opened)."""
        self._reset_curves()
        self.eta.reset()
        self.result.setVisible(False)
        self.result.clear()
        self.use_button.setVisible(False)
        self.bundled_button.setVisible(False)
        self._rejected = None
        self.progress.setFormat("")
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self._set_rate("")
        self.show_elsewhere(None)
        self.log.clear()
        self.set_corrections({})
        self.set_validation([])

    def show_elsewhere(self, text: str | None) -> None:
        """A training of another project is running (`text` says which and where it goes): Train and Stop
        are off here, this project's curves stay. None: that run has ended, Train is available again."""
        self.elsewhere = text
        self.start_button.setEnabled(text is None)
        self.stop_button.setEnabled(False)
        self.start_button.setToolTip("Train on the labelled images in a separate process" if text is None else
                                     "One training at a time: " + text)
        self.stop_button.setToolTip("Stop after the current iteration and keep the model so far" if text is None
                                    else "The running training belongs to another project")
        self.status.setText(text if text is not None else "Ready. Label a few images, then train.")

    def set_trainable(self, allowed: bool, *, running: bool) -> None:
        """Whether this project may train (a read-only one may not: the run would write its model there);
        Train stays off while a run goes on, here or in another project (`show_elsewhere`)."""
        if not allowed:
            self.start_button.setEnabled(False)
            self.start_button.setToolTip("This project is read-only: a training would write its model here")
        elif self.elsewhere is None and not running:
            self.start_button.setEnabled(True)
            self.start_button.setToolTip("Train on the labelled images in a separate process")

    def set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.run_images.setVisible(not running)
        if running:
            self.bundled_button.setVisible(False)
            self.settings_toggle.setChecked(False)  # room for the curves
            self._reset_curves()
            self.eta.reset()
            self.result.setVisible(False)
            self.use_button.setVisible(False)
            iterations = self.iters.value()  # 'auto' (0): known once the run starts
            self.progress.setRange(0, max(iterations, 1))
            self.progress.setFormat("%v / %m" if iterations else "")
            self.progress.setValue(0)
            self._set_rate("")
            self.status.setText("Starting the training process…")
            self.log.clear()

    def on_event(self, e: Event) -> None:
        if isinstance(e, StartEvent):
            for plot in (self.loss_plot, self.miou_plot):  # the whole run on the axis, from its first step
                plot.setXRange(0, max(e.iterations, 1), padding=0.02)
            self.progress.setRange(0, e.iterations)
            self.progress.setFormat("%v / %m")
            self.progress.setValue(0)
            self.eta.reset()
            self.status.setText(
                f"{e.arch} · {e.backbone} on {e.device} ({e.precision}): "
                f"{e.train_images} training, {e.val_images} validation images"
                + (f", {e.skipped_images} skipped" if e.skipped_images else ""))
        elif isinstance(e, StepEvent):
            it = e.iteration
            self.progress.setRange(0, e.iterations)
            self.progress.setValue(it)
            self._loss[0].append(it)
            self._loss[1].append(e.loss)
            self.loss_curve.setData(*self._loss)
            self.progress.setFormat("%v / %m")
            eta = self.eta.update(it, e.iterations, e.elapsed_s, fallback=e.eta_s)
            self._set_rate(f"ETA {format_seconds(eta)} · {e.images_per_s:.1f} img/s · loss {e.loss:.3f}")
        elif isinstance(e, ValidationEvent):
            if e.miou is None:
                return
            if e.iteration == 0 and self.miou_before is None:
                self.miou_before = e.miou
            self._miou[0].append(e.iteration)
            self._miou[1].append(e.miou)
            self.miou_curve.setData(*self._miou)
        elif isinstance(e, DoneEvent):
            self.progress.setValue(e.iteration)

    def show_outcome(self, done: DoneEvent | None, message: str | None = None, *, parent: str | None = None,
                     verdict: Verdict | None = None, headline: str = "Training failed") -> None:
        """After a run: the new version's score and its parent's on the same images, whether it is used, or
        why the run failed (`headline`: or that it was stopped). `parent` names the version it was fine-tuned
        from; `verdict` is the selection rule's (`app.core.loop.adoption.judge(done)` when not given): when it
        keeps the parent, the new version is kept unused, with "Use it anyway"."""
        self.set_running(False)
        self._set_rate("")
        self.result.setVisible(True)
        self.use_button.setVisible(False)
        self._rejected = None
        if done is None:
            self.result.setText(headline)
            self.status.setText(message or "")
            return
        verdict = verdict if verdict is not None else judge(done)
        text = verdict.text(Path(done.model_path).stem, parent)
        if parent is not None and not verdict.adopt:
            self._rejected = done.model_path
            self.use_button.setVisible(True)
        self.result.setText(text + ("  (stopped early)" if done.stopped else ""))
        self.status.setText(f"{done.iteration} iterations in {format_seconds(done.wall_time_s)}; "
                            f"saved {done.model_path}")

    def show_used_anyway(self, name: str) -> None:
        """The person chose version `name` although the rule kept its parent: it is in use now."""
        self.use_button.setVisible(False)
        self.result.setText(f"{name} is used (chosen although it did worse than its parent)")

    def auto_interval(self) -> int | None:
        """Reviewed images between automatic fine-tunes; None while the automatic fine-tune is off."""
        return self.auto_every.value() if self.auto.isChecked() else None

    def set_validation(self, names: Sequence[str]) -> None:
        """The validation images every version is scored on (fewer than 2: not measurable)."""
        if len(names) < 2:
            self.validation.setText(NOT_MEASURABLE)
        else:
            self.validation.setText(f"{len(names)} reviewed images")
        self.validation.setToolTip("\n".join(names) or self.validation.toolTip())

    def set_corrections(self, by_version: Mapping) -> None:
        """Plot the share of pixels the person changed per reviewed image, one colour per model version the
        proposal came from (`LoopRecord.by_version()`), in review order."""
        plot = self.corrections_plot
        plot.clear()
        self.corrections_legend.clear()
        order = sorted(((c.reviewed, name, version, c) for version, items in by_version.items()
                        for name, c in items), key=lambda t: (t[0], t[1]))
        position = {(t[1]): i + 1 for i, t in enumerate(order)}
        self.correction_series: dict[str, tuple[list, list]] = {}
        top = 0.0
        for k, (version, items) in enumerate(by_version.items()):
            label = Path(version).stem if version else "by hand"
            xs = [position[name] for name, _ in items]
            ys = [100.0 * (c.changed_fraction if version else 1.0) for _, c in items]
            color = VERSION_COLORS[k % len(VERSION_COLORS)]
            plot.plot(xs, ys, pen=None, symbol="o", symbolSize=7, symbolBrush=color, name=label)
            self.correction_series[label] = (xs, ys)
            top = max(top, *ys)
        plot.setYRange(0, max(top * 1.1, 1.0))
        plot.setXRange(0.5, max(len(order), 5) + 0.5)  # whole image counts on the axis, also when empty

    def _set_rate(self, text: str) -> None:
        self.rate.setText(text)
        self.rate.setVisible(bool(text))

    def append_log(self, line: str) -> None:
        self.log.appendPlainText(line)

    def _toggle_settings(self, shown: bool) -> None:
        self.settings_box.setVisible(shown)
        self.settings_toggle.setText("Settings ▾" if shown else "Settings ▸")

    def _toggle_log(self, shown: bool) -> None:
        self.log.setVisible(shown)
        self.log_toggle.setText("Log ▾" if shown else "Log ▸")
