"""What the Training panel says before Train about the images of the next run."""

import pytest

from app.core.loop.run_images import FEW_TRAINING_IMAGES, RunImages


def test_counts_split_the_labelled_images():
    assert RunImages.of(10, 2) == RunImages(8, 2)
    assert RunImages.of(0, 0) == RunImages(0, 0)


@pytest.mark.parametrize(("train", "validate", "new", "few"), [
    (0, 0, False, True), (0, 0, True, True), (1, 0, True, True), (FEW_TRAINING_IMAGES - 1, 0, True, True),
    (FEW_TRAINING_IMAGES, 2, True, False), (1, 0, False, False), (8, 2, False, False)])
def test_a_new_model_from_few_images_is_called_too_few(train, validate, new, few):
    counts = RunImages(train, validate)
    assert counts.too_few(new) is few
    assert ("Too few" in counts.text(new) or "Nothing to train" in counts.text(new)) is few


def test_the_text_names_both_numbers_or_why_none_validates():
    assert RunImages(8, 2).text(new=True) == "Trains on 8 images, validates on 2."
    assert RunImages(1, 0).text(new=False) == "Trains on 1 image; none validates yet, so this version gets no score."
    assert RunImages(2, 0).text(new=True) == ("Trains on 2 images; none validates yet, so this version gets no score. "
                                              "Too few for a useful new model: label 1 more first.")
    assert RunImages(3, 2).text(new=True) == "Trains on 3 images, validates on 2."  # enough from ImageNet weights
    assert RunImages(0, 0).text(new=True) == "Nothing to train on yet: label an image first."
