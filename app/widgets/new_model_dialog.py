"""The "new model" dialog: architecture, backbone, and where the backbone's weights come from."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QWidget

import engine
from app.widgets.backbone_weights import BackboneWeightsChoice
from engine.backbones import backbones_for
from engine.backbones import quick_backbone as _quick
from engine.registry import architecture_class


def quick_backbone(arch: str) -> str:
    """A small backbone that trains in minutes on a CPU (the default for new models here)."""
    return _quick(arch)


def suggested_backbones(arch: str) -> list[str]:
    """The backbones offered for `arch` (engine's list): its paper backbone first, then the others."""
    return [b.name for b in backbones_for(arch)]


class NewModelDialog(QDialog):
    """Asks for what a new model needs; the classes come from the project. It opens on DeepLabV3+ with
    EfficientNet-Lite0 and its installed ImageNet weights.

    With ImageNet weights chosen, OK first makes sure they are on this computer (downloading them with
    progress and a Cancel button when needed) and closes the dialog once they are.
    """

    def __init__(self, classes: list, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("New model")
        self.arch = QComboBox()
        self.arch.addItems(engine.list_architectures())
        self.backbone = QComboBox()
        self.backbone.setEditable(True)
        self.backbone.setToolTip("A timm model name")
        self.weights = BackboneWeightsChoice()
        self.arch.currentTextChanged.connect(self._arch_changed)
        self.backbone.currentTextChanged.connect(lambda _: self.weights.set_backbone(self.backbone_name()))
        self.weights.useBundled.connect(self.use_backbone)
        if "deeplabv3plus" in engine.list_architectures():
            self.arch.setCurrentText("deeplabv3plus")
        self._arch_changed(self.arch.currentText())
        names = ", ".join(c.name for c in classes)
        info = QLabel(f"{len(classes)} classes from the project: {names}")
        info.setWordWrap(True)
        info.setProperty("hint", True)
        form = QFormLayout(self)
        form.addRow("Architecture", self.arch)
        form.addRow("Backbone", self.backbone)
        form.addRow("Backbone weights", self.weights)
        form.addRow(info)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(lambda: self.weights.ensure_ready(self.accept))
        self.buttons.rejected.connect(self.reject)
        self.weights.busyChanged.connect(
            lambda busy: self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not busy))
        form.addRow(self.buttons)
        self.resize(520, 0)

    def backbone_name(self) -> str | None:
        """The backbone typed or chosen; the architecture's paper backbone when the field is empty."""
        typed = self.backbone.currentText().strip()
        if typed:
            return typed
        arch = self.arch.currentText()
        return architecture_class(arch).default_backbone if arch else None

    def use_backbone(self, name: str) -> None:
        """Switch to backbone `name` (and to DeepLabV3+ when the architecture cannot take it)."""
        if name not in suggested_backbones(self.arch.currentText()):
            self.arch.setCurrentText("deeplabv3plus")
        self.backbone.setCurrentText(name)

    def _arch_changed(self, arch: str) -> None:
        self.backbone.clear()
        if arch:
            self.backbone.addItems(suggested_backbones(arch))
            self.backbone.setCurrentText(quick_backbone(arch))
        self.weights.set_backbone(self.backbone_name())

    def reject(self) -> None:
        self.weights.cancel()
        super().reject()

    def values(self) -> dict:
        return {"arch": self.arch.currentText(), "backbone": self.backbone.currentText().strip() or None,
                "pretrained": self.weights.value()}
