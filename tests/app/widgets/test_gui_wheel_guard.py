"""The wheel guard on its own: over a scrolling panel the wheel scrolls the panel, past unclicked settings and
charts, while a clicked setting and a view with more to show than fits (a long log) keep it."""

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.widgets.wheel_guard import WheelGuard


def wheel(widget: QWidget, steps: int = 1) -> None:
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    for _ in range(steps):
        QApplication.sendEvent(widget, QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(0, 0), QPoint(0, -120),
                                                   Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                                                   Qt.ScrollPhase.NoScrollPhase, False))


@pytest.fixture
def panel(qtbot):
    """A panel taller than its scroll area: a name field (which has the focus), a combo box, a spin box, a chart
    that zooms on the wheel, a log longer than it shows."""
    content = QWidget()
    layout = QVBoxLayout(content)
    name = QLineEdit()
    layout.addWidget(name)
    combo, spin = QComboBox(), QSpinBox()
    combo.addItems(["a", "b", "c"])
    spin.setRange(0, 100)
    spin.setValue(50)
    chart = pg.PlotWidget()  # mouse enabled: on its own it zooms on the wheel
    chart.plot([0, 1, 2, 3], [0, 1, 0, 1])
    chart.setMinimumHeight(200)
    log = QPlainTextEdit("\n".join(f"line {i}" for i in range(200)))
    log.setFixedHeight(100)
    for w in (combo, spin, chart, log):
        layout.addWidget(w)
    layout.addSpacing(800)
    area = QScrollArea()
    area.setWidget(content)
    area.setWidgetResizable(True)
    area.resize(300, 300)
    WheelGuard(area)
    qtbot.addWidget(area)
    area.show()
    qtbot.waitExposed(area)
    name.setFocus()
    QApplication.processEvents()
    assert area.verticalScrollBar().maximum() > 0
    return area, combo, spin, chart, log


def test_unclicked_settings_pass_the_wheel_to_the_panel_clicked_ones_keep_it(panel):
    area, combo, spin, _, _ = panel
    bar = area.verticalScrollBar()
    for widget in (combo, spin):
        before = bar.value()
        wheel(widget)
        assert bar.value() > before
    assert (combo.currentIndex(), spin.value()) == (0, 50)
    spin.setFocus()
    QApplication.processEvents()
    before = bar.value()
    wheel(spin)
    assert spin.value() != 50 and bar.value() == before


def test_a_chart_passes_the_wheel_to_the_panel_instead_of_zooming(panel):
    area, _, _, chart, _ = panel
    bar = area.verticalScrollBar()
    view = chart.getPlotItem().vb
    before = view.viewRange()
    wheel(chart.viewport(), steps=2)
    assert view.viewRange() == before
    assert bar.value() > 0


def test_a_view_with_more_to_show_keeps_the_wheel(panel):
    area, _, _, _, log = panel
    bar, own = area.verticalScrollBar(), log.verticalScrollBar()
    assert own.maximum() > 0
    wheel(log.viewport())
    assert own.value() > 0 and bar.value() == 0
