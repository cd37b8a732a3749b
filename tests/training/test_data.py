"""Training data: pairing by stem, the checks before training, validation split, crops, data order."""

import numpy as np
import pytest

import engine
from training.augment import augment, random_resized_crop
from training.data import DataError, IterationBatches, load_dataset, mark_corrections, split_named, split_validation

from .conftest import label_file


def test_pairs_by_stem_and_counts_images_without_labels(shapes):
    images, labels = shapes
    (labels / "002.png").unlink()
    label_file(labels / "orphan.png", np.zeros((48, 48)))
    data = load_dataset(images, labels, 3)
    assert [s.name for s in data.samples] == ["000", "001", "003", "004", "005"]
    assert data.skipped == 1
    assert any("orphan.png" in note for note in data.notes)


def test_label_whose_size_differs_from_its_image(shapes):
    images, labels = shapes
    label_file(labels / "001.png", np.zeros((40, 48)))
    with pytest.raises(DataError, match=r"001\.png: the label is 48x40 but its image 001\.png is 48x48"):
        load_dataset(images, labels, 3)


def test_label_values_above_the_class_count(shapes):
    images, labels = shapes
    bad = np.zeros((48, 48))
    bad[:4, :4], bad[4:8, :4] = 7, 255
    label_file(labels / "004.png", bad)
    with pytest.raises(DataError, match=r"004\.png: label values 7 are not classes \(expected 0-2, or 255"):
        load_dataset(images, labels, 3)


def test_unreadable_image_and_label_are_named_together(shapes):
    images, labels = shapes
    (images / "000.png").write_bytes(b"not a png at all")
    (labels / "003.png").write_bytes(b"")
    with pytest.raises(DataError) as err:
        load_dataset(images, labels, 3)
    message = str(err.value)
    assert "2 problem(s)" in message
    assert "000.png: not a readable image" in message
    assert "003.png: the file is empty" in message


def test_no_labelled_pixel_at_all(shapes):
    images, labels = shapes
    for path in engine.list_images(labels):
        label_file(path, np.full((48, 48), 255))
    with pytest.raises(DataError, match="no labelled pixel in any of the 6 label files"):
        load_dataset(images, labels, 3)


def test_an_unlabelled_label_file_is_skipped(shapes):
    images, labels = shapes
    label_file(labels / "005.png", np.full((48, 48), 255))
    data = load_dataset(images, labels, 3)
    assert len(data.samples) == 5 and data.skipped == 1
    assert any("005.png: no labelled pixel" in note for note in data.notes)


def test_missing_folders_and_shared_stems(shapes, tmp_path):
    images, labels = shapes
    with pytest.raises(DataError, match="the labels folder does not exist"):
        load_dataset(images, tmp_path / "nowhere", 3)
    engine.write_image(images / "001.jpg", np.zeros((48, 48, 3), np.uint8))
    with pytest.raises(DataError, match="several files share the name '001'"):
        load_dataset(images, labels, 3)


def test_validation_split_is_deterministic_and_never_empty(shapes):
    data = load_dataset(*shapes, 3)
    train, val = split_validation(data.samples, 0.5)
    assert len(val) == 3 and len(train) == 3
    assert sorted(s.name for s in split_validation(data.samples[::-1], 0.5)[1]) == [s.name for s in val]
    assert len(split_validation(data.samples, 0.01)[1]) == 2  # never a one-image validation set
    assert split_validation(data.samples[:2], 0.5) == (data.samples[:2], [])  # two held out would leave none
    assert len(split_validation(data.samples, 0.99)[0]) == 1  # at least one image left to train on


def test_named_validation_images_are_held_out_by_file_name_or_stem(shapes):
    data = load_dataset(*shapes, 3)
    train, val, missing = split_named(data.samples, ["001.png", "004", "nope.png"])
    assert [s.name for s in val] == ["001", "004"] and len(train) == 4 and missing == ["nope.png"]
    with pytest.raises(DataError, match="nothing is left to train on"):
        split_named(data.samples, [s.image_path.name for s in data.samples])


def test_crops_pad_labels_with_255_and_keep_classes():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, (30, 40)).astype(np.uint8)
    for seed in range(10):
        img, lab = augment(image, labels, 64, (0.5, 1.0), np.random.default_rng(seed))
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and lab.shape == (64, 64)
        assert set(np.unique(lab)) <= {0, 1, 2, 255}
        assert (lab[40:, :] == 255).all()  # beyond a 30-px image scaled by at most 1
        assert (img[40:, :] == 0).all()


def test_crop_resizes_by_the_ratio():
    labels = np.zeros((100, 100), np.uint8)
    labels[:, 50:] = 1
    _, lab = random_resized_crop(labels[..., None].repeat(3, 2), labels, 128, (1.28, 1.28), np.random.default_rng(0))
    assert (lab[:, :128] != 255).sum() == 128 * 128
    assert (lab == 1).sum() == 128 * 64


def test_sparse_labels_give_crops_with_labelled_pixels():
    labels = np.full((400, 400), 255, np.uint8)
    labels[300:306, 40:90] = 1  # one short stroke
    labels[100:104, 250:300] = 0
    anchors = np.flatnonzero(labels != 255)
    image = np.zeros((400, 400, 3), np.uint8)
    for seed in range(20):
        _, lab = augment(image, labels, 64, (0.5, 2.0), np.random.default_rng(seed), anchors)
        assert (lab != 255).any()


def test_crop_avoids_one_class_dominating_when_it_can():
    labels = np.zeros((200, 200), np.uint8)
    labels[60:140, 60:140] = 1
    shares = []
    for seed in range(20):
        _, lab = random_resized_crop(np.zeros((200, 200, 3), np.uint8), labels, 64, (1.0, 1.0),
                                     np.random.default_rng(seed))
        counts = np.bincount(lab.ravel(), minlength=2)[:2]
        shares.append(counts.max() / counts.sum())
    assert np.mean(np.array(shares) < 0.75) > 0.8


def test_data_order_resumes_and_ranks_share_it_out():
    full = list(IterationBatches(5, 2, 12, seed=7))
    assert list(IterationBatches(5, 2, 12, seed=7, start=5)) == full[5:]
    for epoch in range(4):  # every epoch of the stream visits every sample once
        positions = [k[0] for batch in full for k in batch][epoch * 5:(epoch + 1) * 5]
        assert sorted(positions) == list(range(5))
    ranks = [list(IterationBatches(5, 2, 6, seed=7, rank=r, world_size=2)) for r in range(2)]
    merged = [a + b for a, b in zip(*ranks, strict=True)]
    assert [[k[0] for k in batch] for batch in merged] == [[k[0] for k in batch]
                                                           for batch in IterationBatches(5, 4, 6, seed=7)]
    keys = [k[1] for batch in full for k in batch]
    assert len(set(keys)) == len(keys)  # every crop its own augmentation seed


def test_focus_sampling_follows_the_weights_and_resumes():
    weights = [1.0, 1.0, 3.0, 1.0, 2.5]
    batches = list(IterationBatches(5, 4, 2000, seed=3, weights=weights))
    drawn = np.bincount([k[0] for batch in batches for k in batch], minlength=5)
    assert np.allclose(drawn / drawn.sum(), np.array(weights) / sum(weights), atol=0.01)
    assert list(IterationBatches(5, 4, 40, seed=3, weights=weights, start=17)) == batches[17:40]
    first = [k[0] for batch in batches for k in batch][:8]  # an epoch: 1+1+3+1+2 or 3 positions
    assert set(first[:8]) == set(range(5))  # every sample at least once an epoch
    unweighted = list(IterationBatches(5, 4, 30, seed=3))
    assert list(IterationBatches(5, 4, 30, seed=3, weights=[2.0] * 5)) == unweighted  # equal weights: same order
    with pytest.raises(ValueError, match="positive"):
        IterationBatches(3, 2, 4, seed=0, weights=[1.0, 0.0, 1.0])


def test_focus_names_match_file_names_or_stems(shapes):
    from training.data import focus_weights

    data = load_dataset(*shapes, 3)
    assert focus_weights(data.samples, ("001.png", "004"), 4.0) == [1.0, 4.0, 1.0, 1.0, 4.0, 1.0]
    assert focus_weights(data.samples, (), 4.0) is None
    assert focus_weights(data.samples, ("not-there.png",), 4.0) is None


def test_crops_of_a_corrected_image_hold_a_correction_as_often_as_asked():
    image = np.full((96, 96, 3), 128, np.uint8)
    labels = np.zeros((96, 96), np.uint8)
    labels[80:84, 4:8] = 1  # the one place the parent got wrong
    corrected = np.flatnonzero(labels == 1)

    def share(p: float) -> float:
        hits = [1 in augment(image, labels, 32, (1.0, 1.0), np.random.default_rng(seed), None, corrected, p)[1]
                for seed in range(200)]
        return float(np.mean(hits))

    assert share(1.0) == 1.0
    assert 0.4 < share(0.5) < 0.75  # half on the correction, the rest land on it by chance (16/169 of windows)
    assert share(0.0) < 0.2


def test_corrections_are_the_labelled_pixels_the_starting_model_got_wrong(shapes):
    images, labels = shapes
    data = load_dataset(images, labels, 3)
    first = data.samples[0]

    def predict(image):  # the parent: right everywhere but one row
        out = first.labels.copy() if image is first.read_image() else np.zeros_like(first.labels)
        out[0] = (out[0] + 1) % 3
        return out

    marked = mark_corrections(data.samples, predict, [first.image_path.name])
    expected = np.flatnonzero(np.arange(first.labels.size) < first.labels.shape[1])
    expected = expected[first.labels.ravel()[expected] != engine.IGNORE_INDEX]
    assert marked == 1 and np.array_equal(first.corrected, expected)
    assert all(s.corrected is None for s in data.samples[1:])  # not in focus: crops anywhere
