"""Validation as the app's proposals see it: named validation images, the parent re-scored on them in the
same run (as a whole and image by image), and no score from fewer than two images."""

import numpy as np
import pytest
import torch

import engine
from training import train
from training.metrics import confusion_matrix, scores

from .conftest import CLASSES, tiny_config, write_shapes

VAL = ("001.png", "004.png")
FLIP = {"tta": True, "tta_scales": (1.0,), "tta_flip": True}  # the app's proposals: flip test-time augmentation


@pytest.fixture
def data(tmp_path):
    return write_shapes(tmp_path / "data", 6, 48, seed=3)


def proposal_miou(model_file, images, names) -> float:
    """The mIoU of the proposals the app makes with `model_file` (a fresh `engine.Predictor`, the app's options)."""
    predictor = engine.Predictor(model_file, device="cpu", **FLIP)
    k = predictor.num_classes
    confusion = torch.zeros(k, k, dtype=torch.int64)
    for name in names:
        labels = engine.read_label(images.parent / "labels" / name)
        predicted = predictor.predict(images / name).labels.astype(np.int64)
        confusion += confusion_matrix(torch.from_numpy(predicted), torch.from_numpy(np.array(labels)), k)
    return scores(confusion)["miou"]


def proposal_errors(model_file, images, names) -> dict[str, float]:
    """Each image's share of labelled pixels the app's proposals with `model_file` get wrong."""
    predictor = engine.Predictor(model_file, device="cpu", **FLIP)
    out = {}
    for name in names:
        labels = np.array(engine.read_label(images.parent / "labels" / name))
        predicted = predictor.predict(images / name).labels
        labelled = labels != 255
        out[name] = float((predicted[labelled] != labels[labelled]).sum() / labelled.sum())
    return out


def finetune(images, labels, parent, out, **overrides):
    return tiny_config(images, labels, out, init=parent, arch=None, backbone=None, model_options={}, classes=None,
                       **overrides)


def test_named_validation_images_are_held_out_and_scored_as_the_app_predicts(data, tmp_path):
    events = []
    result = train(tiny_config(*data, tmp_path / "m.safetensors", iterations=6, val_names=VAL), on_event=events.append)
    start = events[0]
    assert start.train_images == 4 and start.val_images == 2
    done = events[-1]
    assert done.kind == "done" and done.val_names == list(VAL) and done.parent_miou is None
    assert done.miou == result.miou and done.miou is not None
    # the score of the run is the score of the file's proposals on the same images
    assert done.miou == pytest.approx(proposal_miou(result.model_path, data[0], VAL), abs=1e-9)
    record = engine.load_model(result.model_path).meta["history"][-1]
    assert record["miou"] == done.miou and record["val_names"] == list(VAL)


def test_a_fine_tune_rescores_its_parent_on_the_same_images_in_the_same_run(data, tmp_path):
    parent = train(tiny_config(*data, tmp_path / "parent.safetensors", iterations=40, lr=0.05,
                               val_names=VAL)).model_path
    # the fine-tune learns the wrong classes (every training label shifted by one; the validation labels are
    # the truth): it is worse than its parent on the validation images, and the numbers say so
    images, labels = data
    wrong = tmp_path / "wrong-labels"
    wrong.mkdir()
    for path in sorted(labels.iterdir()):
        values = np.array(engine.read_label(path))
        if path.name not in VAL:
            values = np.where(values == 255, 255, (values.astype(np.int64) + 1) % len(CLASSES)).astype(np.uint8)
        engine.write_label(wrong / path.name, values)
    events = []
    result = train(finetune(images, wrong, parent, tmp_path / "child.safetensors", iterations=40, lr=0.05,
                            val_names=VAL), on_event=events.append)
    validations = [e for e in events if e.kind == "validation"]
    assert validations[0].iteration == 0 and result.parent_miou == validations[0].miou
    assert result.parent_miou == pytest.approx(proposal_miou(parent, data[0], VAL), abs=1e-9)
    assert result.miou == pytest.approx(proposal_miou(result.model_path, data[0], VAL), abs=1e-9)
    done = events[-1]
    assert (done.miou, done.parent_miou, done.val_names) == (result.miou, result.parent_miou, list(VAL))
    # and image by image, as the selection rule compares them
    assert done.image_errors == result.image_errors == validations[-1].image_errors
    assert done.parent_image_errors == validations[0].image_errors
    for got, model in ((done.image_errors, result.model_path), (done.parent_image_errors, parent)):
        want = proposal_errors(model, data[0], VAL)
        assert list(got) == list(VAL) and got == pytest.approx(want, abs=1e-12)
    assert result.miou < result.parent_miou


def test_one_validation_image_is_not_measurable(data, tmp_path):
    parent = train(tiny_config(*data, tmp_path / "parent.safetensors", iterations=2)).model_path
    events = []
    result = train(finetune(*data, parent, tmp_path / "child.safetensors", iterations=3, val_names=("002.png",)),
                   on_event=events.append)
    assert events[0].train_images == 5 and events[0].val_images == 1  # held out all the same
    assert not [e for e in events if e.kind == "validation"]
    done = events[-1]
    assert done.miou is None and done.parent_miou is None and done.best_miou is None
    assert done.val_names == ["002.png"] and result.miou is None
    assert done.image_errors == {} and done.parent_image_errors == {}


def test_val_names_on_the_command_line_take_a_comma_list_or_a_file(tmp_path):
    from training import TrainConfig

    names = tmp_path / "val.txt"
    names.write_text("a.png\n\n b.jpg \n", encoding="utf-8")
    base = ["--images", "i", "--labels", "l", "--out", "o.safetensors", "--classes", "x,y"]
    assert TrainConfig.from_args([*base, "--val-names", str(names)]).val_names == ("a.png", "b.jpg")
    cfg = TrainConfig.from_args([*base, "--val-names", "a.png, c"])
    assert cfg.val_names == ("a.png", "c") and TrainConfig.from_args(cfg.to_args()) == cfg
    with pytest.raises(ValueError, match="val_names is a validation set of its own"):
        TrainConfig.from_args([*base, "--val-names", "a", "--val-fraction", "0.2"])
