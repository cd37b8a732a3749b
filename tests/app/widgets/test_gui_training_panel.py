"""The training panel in the real window at 1280x800 and 1920x1080: buttons, progress and settings in view
without scrolling past the charts, nothing wider than the dock, the wheel over a chart scrolls instead of
zooming, the progress range of a new run, a steady ETA, and a fresh panel for another project."""

import itertools

import pytest
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QComboBox, QScrollArea

from app.core.loop.adoption import Verdict
from app.core.loop.eta import EtaEstimate
from app.window.main_window import MainWindow
from tests.app.gui_helpers import make_project
from training.events import DoneEvent, StartEvent, StepEvent, ValidationEvent


def _window(qtbot, tmp_path, size):
    folder = make_project(tmp_path / "project", n=3, size=(40, 48), labelled=2)
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    assert w.open_project(folder)
    w.training_dock.raise_()
    qtbot.waitExposed(w)
    QApplication.processEvents()
    return w


def _in_view(widget, area: QScrollArea) -> bool:
    top_left = widget.mapTo(area.viewport(), QPoint(0, 0))
    return area.viewport().rect().contains(QRect(top_left, widget.size()))


def _done(**kw) -> DoneEvent:
    base = dict(iteration=100, model_path="/p/models/deeplabv3plus-v2-with-a-long-name.safetensors",
                best_path=None, best_miou=None, last_miou=None, miou=0.61234, parent_miou=0.65432,
                val_names=["a.png", "b.png"], wall_time_s=12.0, stopped=False)
    return DoneEvent(**{**base, **kw})


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_panel_fits_the_dock(qtbot, tmp_path, size):
    w = _window(qtbot, tmp_path, size)
    panel = w.training_panel
    area = w.training_dock.widget()
    assert isinstance(area, QScrollArea)
    for widget in (panel.start_button, panel.stop_button, panel.progress, panel.settings_toggle):
        assert widget.isVisible() and _in_view(widget, area), widget
    assert panel.settings_box.isVisible()
    assert panel.settings_box.geometry().top() < panel.plots.geometry().top()  # settings above the charts
    # a long outcome line wraps: nothing gets wider than the visible part of the dock
    panel.show_outcome(_done(), parent="deeplabv3plus-v1-with-an-even-longer-name",
                       verdict=Verdict(False, 2, 0.61, 0.65, 0.53, 0.22, 2, 2.4, 1.3, 2.0, paired=True))
    QApplication.processEvents()
    assert panel.width() <= area.viewport().width()
    for widget in (panel.stop_button, panel.result, panel.use_button, panel.progress):
        right = widget.mapTo(area.viewport(), QPoint(widget.width(), 0)).x()
        assert right <= area.viewport().width(), widget


def test_wheel_over_a_chart_scrolls_the_panel_and_leaves_the_chart(qtbot, tmp_path):
    w = _window(qtbot, tmp_path, (1280, 800))
    panel, area = w.training_panel, w.training_dock.widget()
    panel.log_toggle.setChecked(True)  # taller than the dock: there is something to scroll
    panel.settings_toggle.setChecked(True)
    QApplication.processEvents()
    bar = area.verticalScrollBar()
    assert bar.maximum() > 0
    view = panel.loss_plot.vb
    before = view.viewRange()
    viewport = panel.plots.viewport()
    pos = QPointF(viewport.width() / 2, viewport.height() / 6)
    for _ in range(3):
        event = QWheelEvent(pos, viewport.mapToGlobal(pos), QPoint(0, 0), QPoint(0, -120), Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(viewport, event)
    assert view.viewRange() == before
    assert bar.value() > 0


def test_wheel_over_a_setting_scrolls_the_panel_until_the_setting_is_clicked(qtbot, tmp_path):
    w = _window(qtbot, tmp_path, (1280, 800))
    panel, area = w.training_panel, w.training_dock.widget()
    panel.log_toggle.setChecked(True)
    panel.settings_toggle.setChecked(True)
    QApplication.processEvents()
    bar = area.verticalScrollBar()
    combo, spin = panel.weights.findChildren(QComboBox)[0], panel.crop
    settings = (combo.currentIndex(), spin.value())

    def wheel(widget):
        pos = QPointF(widget.width() / 2, widget.height() / 2)
        QApplication.sendEvent(widget, QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(0, 0), QPoint(0, -120),
                                                   Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                                                   Qt.ScrollPhase.NoScrollPhase, False))

    for widget in (combo, spin):
        before = bar.value()
        wheel(widget)
        assert bar.value() > before or bar.value() == bar.maximum()
    assert (combo.currentIndex(), spin.value()) == settings  # nothing changed under the pointer
    spin.setFocus()
    wheel(spin)
    assert spin.value() != settings[1]  # once clicked, the wheel is the spin box's


def test_a_new_run_counts_from_zero_to_its_own_iterations(qtbot, tmp_path):
    w = _window(qtbot, tmp_path, (1280, 800))
    panel = w.training_panel
    panel.iters.setValue(200)
    panel.set_running(True)
    panel.on_event(StepEvent(iteration=200, iterations=200, loss=0.1, lr=0.01, elapsed_s=20, eta_s=0,
                             images_per_s=9.0))
    panel.show_outcome(_done(iteration=200))
    panel.iters.setValue(100)
    panel.set_running(True)
    assert (panel.progress.minimum(), panel.progress.maximum(), panel.progress.value()) == (0, 100, 0)
    assert panel.progress.text() == "0 / 100"
    panel.iters.setValue(0)  # auto: the count comes with the start event
    panel.set_running(True)
    assert panel.progress.text() == ""
    panel.on_event(StartEvent(iterations=150, arch="deeplabv3plus", backbone="resnet18", device="cpu",
                              precision="fp32", train_images=2, val_images=0, skipped_images=0, classes=["a", "b"]))
    assert panel.progress.text() == "0 / 150"
    panel.on_event(StepEvent(iteration=10, iterations=150, loss=0.5, lr=0.01, elapsed_s=10, eta_s=140,
                             images_per_s=12.34))
    assert panel.progress.text() == "10 / 150"
    panel.on_event(ValidationEvent(iteration=10, miou=0.4, pixel_accuracy=0.8, per_class_iou=[], confusion=[]))
    QApplication.processEvents()
    for plot in (panel.loss_plot, panel.miou_plot):  # one step in: the axes already span the whole run
        left, right = plot.vb.viewRange()[0]
        assert left <= 0 and 150 <= right < 160, (plot, left, right)
    assert not panel.rate.wordWrap() and "12.3 img/s · loss 0.500" in panel.rate.text() and panel.rate.isVisible()
    assert panel.rate.fontMetrics().horizontalAdvance(panel.rate.text()) <= panel.rate.width()


def _steps(times):
    """Step events every 10 iterations of a 400-iteration run taking the given seconds per 10 iterations."""
    elapsed, it = 0.0, 0
    for dt in times:
        elapsed += dt
        it += 10
        yield StepEvent(iteration=it, iterations=400, loss=0.3, lr=0.01, elapsed_s=elapsed,
                        eta_s=dt / 10 * (400 - it), images_per_s=40 / dt)


def test_the_eta_counts_down_through_a_validation_pause_and_a_slow_step():
    times = [8.0] + [2.0] * 14 + [30.0] + [2.0] * 10 + [0.5] + [2.0] * 13  # warm-up, validation, a fast window
    events = list(_steps(times))
    raw = [e.eta_s for e in events]
    assert max(raw[15:20]) > 3 * min(raw[10:15])  # the trainer's own ETA jumps at the pause
    eta = EtaEstimate(window_s=60)
    shown = [eta.update(e.iteration, e.iterations, e.elapsed_s, fallback=e.eta_s) for e in events]
    rises = [b - a for a, b in itertools.pairwise(shown)]
    assert max(rises) < 10  # never more than a few seconds up between events
    assert all(0.5 < b / a < 1.3 for a, b in itertools.pairwise(shown[1:]) if a > 20)  # no jumps either way
    assert shown[-1] == 0
    true_left = [sum(times[i + 1:]) for i in range(len(times))]
    assert abs(shown[20] - true_left[20]) < 0.5 * true_left[20]  # the pause is in its window


def test_another_project_starts_with_an_empty_panel(qtbot, tmp_path):
    w = _window(qtbot, tmp_path, (1280, 800))
    panel = w.training_panel
    panel.iters.setValue(50)
    panel.set_running(True)
    panel.on_event(StepEvent(iteration=50, iterations=50, loss=0.2, lr=0.01, elapsed_s=5, eta_s=0,
                             images_per_s=9.0))
    panel.show_outcome(_done(iteration=50))
    assert panel.result.isVisible() and panel._loss[0]
    other = make_project(tmp_path / "other", n=2, size=(40, 48), labelled=0)
    assert w.open_project(other)
    assert not panel.result.isVisible() and not panel._loss[0] and panel.progress.text() == ""
    assert panel.status.text().startswith("Ready")
