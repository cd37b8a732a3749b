"""The selection rule: a new version is used unless it is worse than its parent beyond the noise of the
validation images, compared image by image; the line the panel shows says what the rule measured."""

import math

import pytest

from app.core.loop.adoption import MARGIN, PRIOR_IMAGES, PRIOR_SD, Verdict, Z, judge
from training.events import DoneEvent

NAMES = [f"{c}.png" for c in "abcdefgh"]


def done(new, old, *, miou=0.60, parent_miou=0.65) -> DoneEvent:
    names = NAMES[:len(new)]
    return DoneEvent(iteration=100, model_path="/p/models/m-v3.safetensors", best_path=None, best_miou=None,
                     last_miou=None, wall_time_s=1.0, miou=miou, parent_miou=parent_miou, val_names=names,
                     image_errors=dict(zip(names, new, strict=True)),
                     parent_image_errors=dict(zip(names, old, strict=True)))


def test_a_version_worse_on_every_image_by_far_is_not_used():
    v = judge(done([0.62, 0.55, 0.75, 0.58], [0.20, 0.25, 0.30, 0.22]))
    assert not v.adopt and v.paired and v.worse_on == 4 and v.images == 4
    assert v.error == pytest.approx(0.625) and v.parent_error == pytest.approx(0.2425)
    r = [math.log(63 / 21), math.log(56 / 26), math.log(76 / 31), math.log(59 / 23)]  # (+ 1 point each side)
    mean = sum(r) / 4
    pooled = math.sqrt((PRIOR_IMAGES * PRIOR_SD**2 + sum((x - mean) ** 2 for x in r)) / (PRIOR_IMAGES + 3))
    assert v.ratio == pytest.approx(math.exp(mean)) and v.noise == pytest.approx(math.exp(Z * pooled / 2))
    assert v.bound == pytest.approx(max(1 + MARGIN, v.noise)) and v.bound < v.ratio
    text = v.text("m-v3", "m-v2")
    assert text.startswith("m-v3 is worse than m-v2 on the same 4 images: mIoU 0.600 against 0.650; "
                           f"62.5 % of pixels wrong against 24.2 %, worse on 4 of 4 images (x{v.ratio:.2f} per "
                           f"image, where the parent stays only beyond x{v.bound:.2f}; the noise of 4 images: "
                           f"x{v.noise:.2f})"), text
    assert text.endswith("; m-v2 stays")


def test_worse_on_some_images_and_better_on_others_is_used():
    v = judge(done([0.30, 0.34, 0.20, 0.25], [0.22, 0.26, 0.27, 0.28]))
    assert v.adopt and v.worse_on == 2 and v.error > v.parent_error  # more pixels wrong, mostly on two images
    assert v.text("m-v3", "m-v2").endswith("; m-v3 is used")


def test_the_same_difference_is_noise_on_two_images_and_a_finding_on_eight():
    old = [0.05, 0.30, 0.04, 0.36, 0.06, 0.28, 0.05, 0.33]
    new = [0.35, 0.20, 0.29, 0.24, 0.41, 0.19, 0.35, 0.22]  # 6-7x on every other image, better on the rest
    two, eight = judge(done(new[:2], old[:2])), judge(done(new, old))
    assert two.ratio == pytest.approx(eight.ratio, rel=0.1) and two.ratio > 1 + MARGIN  # the same, on average
    assert two.adopt and two.bound == two.noise > two.ratio
    assert not eight.adopt


def test_a_consistent_difference_below_the_margin_is_no_difference():
    old = [0.10, 0.12, 0.15, 0.11, 0.20, 0.16, 0.13, 0.17]
    assert judge(done([e * (1 + 0.5 * MARGIN) for e in old], old)).adopt
    assert not judge(done([e * (1 + 3 * MARGIN) for e in old], old)).adopt


def test_two_images_reject_a_diverged_fine_tune():
    assert not judge(done([0.60, 0.55], [0.20, 0.22])).adopt
    assert not judge(done([0.176, 0.057], [0.010, 0.017])).adopt  # a good parent, many times fewer errors
    assert judge(done([0.31, 0.20], [0.22, 0.24])).adopt  # one image worse, one better


def test_a_better_version_is_used_and_says_so():
    v = judge(done([0.18, 0.20, 0.22, 0.19], [0.22, 0.26, 0.27, 0.28], miou=0.7, parent_miou=0.6))
    assert v.adopt and v.worse_on == 0 and v.ratio < 1
    assert v.text("m-v3", "m-v2") == (
        "m-v3 against m-v2 on the same 4 images: mIoU 0.700 against 0.600; 19.8 % of pixels wrong against 25.8 %, "
        f"worse on 0 of 4 images (x{v.ratio:.2f} per image, where the parent stays only beyond x{v.bound:.2f}; "
        f"the noise of 4 images: x{v.noise:.2f}); "
        "m-v3 is used")


def test_without_a_parent_score_the_new_version_is_used():
    v = judge(done([0.5] * 4, [0.1] * 4, parent_miou=None))
    assert v == Verdict(True, 4, 0.60, None)
    assert v.text("m-v1", None) == "m-v1: mIoU 0.600 on 4 images"
    unmeasured = judge(done([], [], miou=None, parent_miou=None))
    assert unmeasured.adopt and "not measurable" in unmeasured.text("m-v1", None)


def test_without_per_image_scores_the_mious_decide():
    bare = dict(iteration=1, model_path="m.safetensors", best_path=None, best_miou=None, last_miou=None,
                wall_time_s=1.0, parent_miou=0.6, val_names=NAMES[:4])
    v = judge(DoneEvent(**bare, miou=0.5))
    assert not v.adopt and not v.paired
    assert v.text("m-v3", "m-v2") == "m-v3 is worse than m-v2 on the same 4 images: mIoU 0.500 against 0.600; " \
                                     "m-v2 stays"
    better = judge(DoneEvent(**bare, miou=0.61))
    assert better.adopt and not better.paired


def test_the_rules_constants_can_be_tried_other_ways():
    """`bench.rule_replay` replays recorded runs with other constants: the keywords are the rule's own."""
    d = done([0.27, 0.30, 0.25], [0.22, 0.24, 0.21])  # about 22 % more wrong pixels on each of 3 images
    assert judge(d) == judge(d, margin=MARGIN, z=Z, prior_sd=PRIOR_SD, prior_images=PRIOR_IMAGES)
    assert not judge(d, margin=0.1, z=1.0).adopt  # a narrow margin and a lax test call it worse
    assert judge(d, margin=0.5, z=1.0).adopt  # a wide margin calls it the same
    assert judge(d, z=4.0).ratio == judge(d).ratio and judge(d, z=4.0).noise > judge(d).noise
