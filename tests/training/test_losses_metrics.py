"""Losses over labelled pixels, the SE-loss target, auxiliary weights; metrics from the confusion matrix."""

import math

import numpy as np
import pytest
import torch

from training.losses import AUX_WEIGHT, SE_WEIGHT, labelled_cross_entropy, presence_targets, segmentation_loss
from training.metrics import confusion_matrix, scores

# Two classes, three pixels in a row: logits (0, 0) -> p = 1/2 each; (ln 3, 0) -> p = (3/4, 1/4).
LOGITS = torch.tensor([[[[0.0, math.log(3), 5.0]], [[0.0, 0.0, -5.0]]]])  # [1, 2, 1, 3]
LABELS = torch.tensor([[[0, 1, 255]]])  # pixel 3 is not labelled
# -ln(1/2) and -ln(1/4), averaged over the two labelled pixels.
CROSS_ENTROPY = (math.log(2) + math.log(4)) / 2


def test_cross_entropy_averages_over_labelled_pixels_only():
    assert labelled_cross_entropy(LOGITS, LABELS).item() == pytest.approx(CROSS_ENTROPY, rel=1e-6)
    # Unlabelled pixels do not matter at all, whatever the logits there.
    other = LOGITS.clone()
    other[..., 2] = torch.tensor([-100.0, 100.0])[:, None]
    assert labelled_cross_entropy(other, LABELS).item() == pytest.approx(CROSS_ENTROPY, rel=1e-6)
    # Averaged over labelled pixels, not all of them (mmseg's avg_non_ignore=False would give 2/3 of it).
    assert labelled_cross_entropy(LOGITS, LABELS).item() != pytest.approx(CROSS_ENTROPY * 2 / 3, rel=1e-3)


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
    uniform = torch.zeros(1, 2, 1, 3)  # p = 1/2 everywhere: ln 2 per labelled pixel
    # SE logits: 0 -> sigmoid 1/2 against targets (1, 1) (both classes labelled): ln 2 each; ln 3 -> 3/4
    # against 1: ln(4/3).
    se = torch.tensor([[0.0, math.log(3)]])
    outs = {"out": LOGITS, "aux": uniform, "aux0": uniform, "se": se}
    total, terms = segmentation_loss(outs, LABELS)
    se_loss = (math.log(2) + math.log(4 / 3)) / 2
    assert AUX_WEIGHT == 0.4 and SE_WEIGHT == 0.2
    assert terms["out"].item() == pytest.approx(CROSS_ENTROPY, rel=1e-6)
    assert terms["aux"].item() == pytest.approx(math.log(2), rel=1e-6)
    assert terms["se"].item() == pytest.approx(se_loss, rel=1e-6)
    assert total.item() == pytest.approx(CROSS_ENTROPY + 0.4 * 2 * math.log(2) + 0.2 * se_loss, rel=1e-6)
    with pytest.raises(ValueError, match="'depth'"):
        segmentation_loss({"out": LOGITS, "depth": LOGITS}, LABELS)


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
