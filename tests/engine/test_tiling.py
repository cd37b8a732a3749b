"""Sliding windows: coverage, blending, agreement with untiled prediction, bounded memory, cancelling."""

import numpy as np
import pytest
import torch

import engine
import engine.predictor
from engine.tiling import BandAccumulator, ramp, tile_grid, tile_starts, tile_weights
from tests.engine.pointwise import PointwiseModel, PositionModel


def random_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("length,tile,overlap", [(900, 256, 1 / 3), (700, 256, 0.5), (257, 256, 1 / 3),
                                                 (256, 256, 1 / 3), (100, 256, 0.25), (1000, 64, 0.0)])
def test_windows_cover_the_length_and_overlap_as_asked(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts == sorted(set(starts))
    if length <= tile:
        assert starts == [0]
        return
    assert starts[-1] == length - tile
    gaps = np.diff(starts)
    assert gaps.max() <= tile * (1 - overlap) + 1e-9, "windows overlap at least `overlap` of a tile"
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s:s + tile] = True
    assert covered.all()


def test_blending_weights_fall_off_inside_and_stay_flat_on_the_image_border():
    w = ramp(90, 30, start=True, end=True)
    assert w.min() > 0 and w[45] == 1 and np.allclose(w, w[::-1])
    assert np.all(np.diff(w[:30]) > 0), "rises smoothly"
    assert np.all(ramp(90, 30, start=False, end=False) == 1)
    corner = tile_weights(0, 0, 64, 64, 200, 200, 1 / 3)  # top-left window: top and left sides on the border
    assert corner[0, 0] == 1 and corner[-1, -1] < 0.01


@pytest.mark.parametrize("size,tile,batch", [((150, 230), 64, 3), ((700, 900), 256, 4), ((40, 50), 64, 2),
                                             ((33, 300), 48, 5)])
def test_tiled_prediction_of_a_position_independent_model_equals_the_untiled_one(size, tile, batch):
    model = PointwiseModel(num_classes=4)
    image = random_image(*size)
    whole = engine.Predictor(model, precision="fp32").predict(image, return_probs=True)
    tiled_predictor = engine.Predictor(model, precision="fp32", tile=tile, batch_size=batch)
    tiled = tiled_predictor.predict(image, return_probs=True)
    assert whole.tiles == 1
    assert tiled.tiles == len(tile_grid(max(size[0], tile), max(size[1], tile), tile, tile, 1 / 3))
    np.testing.assert_allclose(tiled.probs, whole.probs, atol=1e-5)
    np.testing.assert_allclose(tiled.confidence, whole.confidence, atol=1e-5)
    np.testing.assert_allclose(tiled.entropy, whole.entropy, atol=1e-4)
    assert (tiled.labels == whole.labels).mean() > 0.999  # exact up to ties within float rounding


def _largest_column_step(predictor: engine.Predictor, image: np.ndarray) -> float:
    probs = predictor.predict(image, return_probs=True).probs[0]
    return float(np.abs(np.diff(probs, axis=1)).max())


def test_smooth_blending_hides_the_seams_that_plain_averaging_shows(monkeypatch):
    image = random_image(64, 300)
    predictor = engine.Predictor(PositionModel(), precision="fp32", tile=64)
    smooth = _largest_column_step(predictor, image)
    monkeypatch.setattr(engine.predictor, "tile_weights", lambda y, x, th, tw, *_: np.ones((th, tw), np.float32))
    plain = _largest_column_step(predictor, image)
    inside_one_window = 0.25 * 6 / 63  # the steepest step of the model's own output
    assert plain > 0.2
    assert smooth < 0.3 * plain
    assert smooth < 4 * inside_one_window


def test_memory_stays_bounded_by_a_band_of_rows(monkeypatch):
    accumulators = []

    class Recording(BandAccumulator):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            accumulators.append(self)

    written_rows = []
    write = engine.predictor._Outputs.write

    def recording_write(self, probs, top):
        written_rows.append(probs.shape[0])
        write(self, probs, top)

    monkeypatch.setattr(engine.predictor, "BandAccumulator", Recording)
    monkeypatch.setattr(engine.predictor._Outputs, "write", recording_write)
    k, h, w, tile, batch = 5, 3000, 80, 48, 4
    prediction = engine.Predictor(PointwiseModel(num_classes=k), precision="fp32", tile=tile,
                                  batch_size=batch).predict(random_image(h, w))
    assert prediction.probs is None and prediction.labels.shape == (h, w)
    (acc,) = accumulators
    full = (k + 1) * h * w  # probabilities and weights for every pixel
    # A batch spans at most `batch` rows of windows plus the one it finishes; twice that while growing.
    bound = 2 * (k + 1) * (batch + 1) * tile * w
    assert 0 < acc.peak_elements <= bound, (acc.peak_elements, bound)
    assert acc.peak_elements < full / 10, (acc.peak_elements, full)
    assert max(written_rows) <= (batch + 1) * tile and sum(written_rows) >= h


def test_should_stop_cancels_between_batches():
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) >= 3

    predictor = engine.Predictor(PointwiseModel(), precision="fp32", tile=32, batch_size=1)
    with pytest.raises(engine.Cancelled):
        predictor.predict(random_image(100, 100), should_stop=should_stop)
    assert len(calls) == 3
    predictor.predict(random_image(40, 40), should_stop=lambda: False)  # still usable afterwards


def test_accumulator_refuses_tiles_above_released_rows():
    acc = BandAccumulator(2, 10, torch.device("cpu"), lambda probs, top: None)
    acc.add(torch.ones(4, 4, 2), torch.ones(4, 4), 0, 0)
    acc.release(3)
    with pytest.raises(ValueError, match="above rows already released"):
        acc.add(torch.ones(4, 4, 2), torch.ones(4, 4), 2, 0)


def test_without_a_tile_large_images_are_tiled_by_the_training_crop():
    predictor = engine.Predictor(PointwiseModel(), precision="fp32")
    assert predictor.window(480, 640) == (480, 640)
    assert predictor.window(20, 10) == (32, 32)  # padded up to the smallest input
    assert predictor.window(3000, 3000) == (1024, 1024)
    predictor.meta["crop_size"] = [1536, 1280]
    assert predictor.window(3000, 3000) == (1536, 1536)
    assert engine.Predictor(PointwiseModel(), tile=(96, 128)).window(3000, 3000) == (96, 128)
