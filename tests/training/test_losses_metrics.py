"""Losses over labelled pixels, the SE-loss target, auxiliary weights; metrics from the confusion matrix."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from training.losses import AUX_WEIGHT, SE_WEIGHT, labelled_cross_entropy, presence_targets, segmentation_loss
from training.metrics import confusion_matrix, scores


def test_cross_entropy_averages_over_labelled_pixels_only():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5)
    labels = torch.randint(0, 3, (2, 4, 5))
    labels[0, :2] = 255
    per_pixel = F.cross_entropy(logits, labels.clamp(max=2), reduction="none")
    expected = per_pixel[labels != 255].mean()
    assert labelled_cross_entropy(logits, labels) == pytest.approx(expected.item(), rel=1e-6)
    # Unlabelled pixels do not matter at all, whatever the logits there.
    logits2 = logits.clone()
    logits2[0, :, :2] = 100.0
    assert labelled_cross_entropy(logits2, labels) == pytest.approx(expected.item(), rel=1e-6)


def test_nothing_labelled_gives_zero_loss_and_zero_gradient():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = labelled_cross_entropy(logits, torch.full((1, 4, 4), 255))
    loss.backward()
    assert loss.item() == 0.0 and (logits.grad == 0).all()


def test_se_loss_target_ignores_255():
    labels = torch.full((2, 4, 4), 255)
    labels[0, 0, 0] = 2
    labels[1, :2] = 0
    target = presence_targets(labels, 4)
    assert target.tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]]


def test_loss_weights_auxiliary_heads_and_se():
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (2, 4, 4))
    outs = {"out": torch.randn(2, 3, 4, 4), "aux": torch.randn(2, 3, 4, 4), "aux0": torch.randn(2, 3, 4, 4),
            "se": torch.randn(2, 3)}
    total, terms = segmentation_loss(outs, labels)
    expected = (terms["out"] + AUX_WEIGHT * (terms["aux"] + terms["aux0"]) + SE_WEIGHT * terms["se"])
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms["se"].item() == pytest.approx(
        F.binary_cross_entropy_with_logits(outs["se"], presence_targets(labels, 3)).item())
    with pytest.raises(ValueError, match="'depth'"):
        segmentation_loss({"out": outs["out"], "depth": outs["out"]}, labels)


def test_confusion_and_scores():
    labels = torch.tensor([[0, 0, 1, 1, 255, 255]])
    predicted = torch.tensor([[0, 1, 1, 1, 2, 0]])
    cm = confusion_matrix(predicted, labels, 4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    s = scores(cm)
    assert s["per_class_iou"] == [pytest.approx(0.5), pytest.approx(2 / 3), None, None]
    assert s["miou"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert s["pixel_accuracy"] == pytest.approx(0.75)
    # A class predicted but never labelled counts, with IoU 0.
    s = scores(np.array([[1, 1], [0, 0]]))
    assert s["per_class_iou"] == [0.5, 0.0]
    assert scores(np.zeros((2, 2)))["miou"] is None
