"""Tool options and layer settings: brush size, overlay opacities, proposal and heat-map toggles."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

HEAT_CHOICES = (("None", "none"), ("Low confidence", "uncertainty"), ("Entropy", "entropy"))
MAX_BRUSH = 1000  # diameter, px


def _slider(value: int, lo: int = 0, hi: int = 100) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    s.setValue(value)
    return s


class ToolOptions(QWidget):
    """Emits each setting as it changes; `brush_radius` and friends hold the current values."""

    brushRadiusChanged = Signal(float)  # half the diameter the panel shows
    labelOpacityChanged = Signal(float)
    proposalVisibleChanged = Signal(bool)
    proposalOpacityChanged = Signal(float)
    heatModeChanged = Signal(str)
    attentionOpacityChanged = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tool_label = QLabel("Brush")
        self.tool_label.setProperty("title", True)
        self.tool_hint = QLabel()
        self.tool_hint.setProperty("hint", True)
        self.tool_hint.setWordWrap(True)
        self.size = QSpinBox()  # the diameter: a brush of 24 px paints a line 24 px wide
        self.size.setRange(1, MAX_BRUSH)
        self.size.setValue(24)
        self.size.setSuffix(" px")
        self.size.setPrefix("⌀ ")
        self.size.setToolTip("Brush and eraser diameter in image pixels  [ and ]")
        self.size_slider = _slider(24, 1, 400)
        self.size_slider.setToolTip(self.size.toolTip())
        self.size.valueChanged.connect(self._size_changed)
        self.size_slider.valueChanged.connect(self.size.setValue)
        size_row = QHBoxLayout()
        size_row.addWidget(self.size_slider, 1)
        size_row.addWidget(self.size)
        tool_box = QGroupBox("Tool")
        tf = QVBoxLayout(tool_box)
        tf.addWidget(self.tool_label)
        tf.addWidget(self.tool_hint)
        self.size_row = QWidget()
        self.size_row.setLayout(size_row)
        size_row.setContentsMargins(0, 0, 0, 0)
        tf.addWidget(self.size_row)

        self.label_opacity = _slider(55)
        self.label_opacity.setToolTip("Opacity of your labels")
        self.label_opacity.valueChanged.connect(lambda v: self.labelOpacityChanged.emit(v / 100))
        self.show_proposal = QCheckBox("Proposal")
        self.show_proposal.setChecked(True)
        self.show_proposal.setToolTip("Show the model's proposal where nothing is labelled yet  [Shift+P]")
        self.show_proposal.toggled.connect(self.proposalVisibleChanged)
        self.proposal_opacity = _slider(60)
        self.proposal_opacity.setToolTip("Opacity of the proposal")
        self.proposal_opacity.valueChanged.connect(lambda v: self.proposalOpacityChanged.emit(v / 100))
        self.heat = QComboBox()
        for text, _ in HEAT_CHOICES:
            self.heat.addItem(text)
        self.heat.setToolTip("Show where the model is unsure: low confidence (1 - max probability) or entropy  [H]")
        self.heat.currentIndexChanged.connect(lambda i: self.heatModeChanged.emit(HEAT_CHOICES[i][1]))
        self.attention_opacity = _slider(70)
        self.attention_opacity.setToolTip("Opacity of the attention map")
        self.attention_opacity.valueChanged.connect(lambda v: self.attentionOpacityChanged.emit(v / 100))
        layers = QGroupBox("Layers")
        lf = QFormLayout(layers)
        lf.addRow("Labels", self.label_opacity)
        lf.addRow(self.show_proposal, self.proposal_opacity)
        lf.addRow("Heat map", self.heat)
        lf.addRow("Attention", self.attention_opacity)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(tool_box)
        layout.addWidget(layers)
        layout.addStretch(1)

    @property
    def brush_radius(self) -> float:
        """Half the diameter shown."""
        return self.size.value() / 2

    def set_brush_radius(self, radius: float) -> None:
        self.size.setValue(max(1, min(MAX_BRUSH, round(2 * radius))))

    def _size_changed(self, value: int) -> None:
        self.size_slider.blockSignals(True)
        self.size_slider.setValue(min(value, self.size_slider.maximum()))
        self.size_slider.blockSignals(False)
        self.brushRadiusChanged.emit(value / 2)

    def show_tool(self, name: str, hint: str, sized: bool) -> None:
        self.tool_label.setText(name)
        self.tool_hint.setText(hint)
        self.size_row.setVisible(sized)

    def heat_mode(self) -> str:
        return HEAT_CHOICES[self.heat.currentIndex()][1]

    def set_heat_mode(self, mode: str) -> None:
        self.heat.setCurrentIndex([m for _, m in HEAT_CHOICES].index(mode))
