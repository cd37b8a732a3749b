"""The navigator's geometry: thumbnail size and the mapping both ways."""

import numpy as np

from app.core.view.overview import Overview


def test_a_large_image_gets_a_small_thumbnail_and_rectangles_map_both_ways():
    ov = Overview.of(np.zeros((4096, 2048, 3), np.uint8), max_side=256)
    assert ov.thumb.shape == (256, 128, 3) and ov.scale == 256 / 4096
    assert ov.to_thumb((1024, 512, 2048, 1024)) == (64, 32, 128, 64)
    assert ov.to_thumb((-100, -100, 9000, 9000)) == (0, 0, 256, 128)  # clipped
    assert ov.to_image((64, 32)) == (1024, 512)
    assert ov.to_image((-5, 500)) == (0, 2048)
    small = Overview.of(np.zeros((40, 60, 3), np.uint8))
    assert small.scale == 1.0 and small.thumb.shape == (40, 60, 3)
