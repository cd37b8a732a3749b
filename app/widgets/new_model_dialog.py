"""The "new model" dialog: architecture, backbone, optional local backbone weights."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

import engine
from engine.registry import architecture_class

CNN_BACKBONES = ("mobilenetv3_large_100", "resnet18", "resnet50", "resnet101")
VIT_BACKBONES = ("vit_tiny_patch16_384", "vit_small_patch16_384", "vit_base_patch16_384")


def quick_backbone(arch: str) -> str:
    """A backbone that trains from scratch in minutes on a CPU (the default for new models here)."""
    return VIT_BACKBONES[0] if arch.startswith(("setr", "segmenter")) else CNN_BACKBONES[0]


def suggested_backbones(arch: str) -> list[str]:
    """The architecture's paper backbone first, then smaller or common alternatives."""
    default = architecture_class(arch).default_backbone
    extra = VIT_BACKBONES if arch.startswith(("setr", "segmenter")) else CNN_BACKBONES
    return [default] + [b for b in extra if b != default]


class NewModelDialog(QDialog):
    """Asks for what a new model needs; the classes come from the project."""

    def __init__(self, classes: list, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("New model")
        self.arch = QComboBox()
        self.arch.addItems(engine.list_architectures())
        self.backbone = QComboBox()
        self.backbone.setEditable(True)
        self.backbone.setToolTip("A timm model name")
        self.arch.currentTextChanged.connect(self._arch_changed)
        if "deeplabv3plus" in engine.list_architectures():
            self.arch.setCurrentText("deeplabv3plus")
        self._arch_changed(self.arch.currentText())
        self.weights = QLineEdit()
        self.weights.setPlaceholderText("none: random initialisation")
        self.weights.setToolTip("Backbone weights from a local .safetensors or .pth file (nothing is downloaded)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        wrow = QHBoxLayout()
        wrow.addWidget(self.weights, 1)
        wrow.addWidget(browse)
        names = ", ".join(c.name for c in classes)
        info = QLabel(f"{len(classes)} classes from the project: {names}")
        info.setWordWrap(True)
        info.setProperty("hint", True)
        form = QFormLayout(self)
        form.addRow("Architecture", self.arch)
        form.addRow("Backbone", self.backbone)
        form.addRow("Backbone weights", wrow)
        form.addRow(info)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.resize(460, 0)

    def _arch_changed(self, arch: str) -> None:
        self.backbone.clear()
        if arch:
            self.backbone.addItems(suggested_backbones(arch))
            self.backbone.setCurrentText(quick_backbone(arch))

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Backbone weights", "", "Weights (*.safetensors *.pth *.pt)")
        if path:
            self.weights.setText(path)

    def values(self) -> dict:
        weights = self.weights.text().strip()
        return {"arch": self.arch.currentText(), "backbone": self.backbone.currentText().strip() or None,
                "pretrained": str(Path(weights)) if weights else False}
