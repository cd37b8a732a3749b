"""The synthetic shapes generator (tests and the bundled sample project use it)."""

import numpy as np
import pytest

from resources.synthetic import make_scribbles, make_shapes


def test_shapes_are_deterministic_and_labelled():
    a, b = make_shapes(5, (40, 56), seed=4), make_shapes(5, (40, 56), seed=4)
    assert all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0][0], make_shapes(1, (40, 56), seed=5)[0][0])
    for image, labels in a:
        assert image.shape == (40, 56, 3) and image.dtype == np.uint8
        assert labels.shape == (40, 56) and labels.dtype == np.uint8
        assert set(np.unique(labels)) <= {0, 1, 2} and (labels > 0).any()
    classes = ("bg", "ring", "triangle", "disk")
    assert max(int(lab.max()) for _, lab in make_shapes(20, 64, 0, classes)) == 3
    with pytest.raises(ValueError, match="shape kinds"):
        make_shapes(1, 32, 0, ("background", "cloud"))


def test_scribbles_label_about_the_fraction_asked_and_only_true_classes():
    _, labels = make_shapes(1, 96, seed=2)[0]
    scribbles = make_scribbles(labels, 0.15, seed=0)
    labelled = scribbles != 255
    assert 0.1 < labelled.mean() < 0.25
    assert np.array_equal(scribbles[labelled], labels[labelled])
    assert set(np.unique(scribbles[labelled])) == set(np.unique(labels))  # every region gets a stroke
    assert np.array_equal(scribbles, make_scribbles(labels, 0.15, seed=0))
