"""Image and label files: formats, depths, channels, orientation, paths, and errors naming the file."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from engine.classes import SegClass
from engine.images import ImageReadError, image_size, read_image, read_label, write_image, write_label

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp"])
def test_lossless_formats_round_trip_rgb(tmp_path, suffix):
    path = tmp_path / f"im{suffix}"
    if suffix == ".webp":
        Image.fromarray(RGB).save(path, lossless=True)
    else:
        Image.fromarray(RGB).save(path)
    np.testing.assert_array_equal(read_image(path), RGB)


def test_jpeg_reads_close_to_the_original(tmp_path):
    smooth = cv2.GaussianBlur(RGB, (9, 9), 3)
    Image.fromarray(smooth).save(tmp_path / "im.jpg", quality=98)
    got = read_image(tmp_path / "im.jpg")
    assert got.shape == smooth.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - smooth).mean() < 3


def test_grey_is_repeated_to_three_channels(tmp_path):
    grey = RGB[..., 0]
    Image.fromarray(grey).save(tmp_path / "g.png")
    got = read_image(tmp_path / "g.png")
    assert got.shape == (37, 53, 3)
    for c in range(3):
        np.testing.assert_array_equal(got[..., c], grey)


def test_rgba_drops_alpha(tmp_path):
    rgba = np.dstack([RGB, RNG.integers(0, 256, (37, 53), dtype=np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), RGB)


def test_sixteen_bit_grey_is_scaled_by_its_maximum(tmp_path):
    deep = (RGB[..., 0].astype(np.uint16) * 16)  # 12-bit data in a 16-bit file
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    got = read_image(tmp_path / "d.png")
    assert got.dtype == np.uint8 and got[..., 0].max() == 255
    want = np.round(deep.astype(np.float32) * 255 / deep.max()).astype(np.uint8)
    np.testing.assert_array_equal(got[..., 1], want)


def test_sixteen_bit_rgb_tiff_keeps_its_colours(tmp_path):
    deep = RGB.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "d.tif"), cv2.cvtColor(deep, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(read_image(tmp_path / "d.tif"), RGB)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow(tmp_path, orientation):
    im = Image.fromarray(RGB)
    exif = im.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    im.save(path, exif=exif.tobytes())
    want = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    np.testing.assert_array_equal(read_image(path), want)
    assert image_size(path) == want.shape[:2]


def test_non_ascii_paths(tmp_path):
    folder = tmp_path / "Bilder – café 画像"
    folder.mkdir()
    path = write_image(folder / "straße.png", RGB)
    np.testing.assert_array_equal(read_image(path), RGB)


@pytest.mark.parametrize(
    "content, problem",
    [(b"", "empty"), (b"this is not an image at all", "not a readable image"), (None, "no such file")],
)
def test_bad_files_are_named(tmp_path, content, problem):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=f"bad.png: .*{problem}"):
        read_image(path)


def test_truncated_png_is_named(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(RGB).save(buf, format="PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[:60])
    with pytest.raises(ImageReadError, match="cut.png"):
        read_image(tmp_path / "cut.png")


def test_labels_round_trip_as_palette_png_with_class_colours(tmp_path):
    labels = RNG.integers(0, 3, (20, 30)).astype(np.uint8)
    labels[:4] = 255
    classes = [SegClass("a", (10, 20, 30)), SegClass("b", (40, 50, 60)), SegClass("c", (70, 80, 90))]
    path = write_label(tmp_path / "l.png", labels, classes)
    with Image.open(path) as im:
        assert im.mode == "P"
        assert im.getpalette()[3:6] == [40, 50, 60]
    np.testing.assert_array_equal(read_label(path, num_classes=3), labels)
    assert not list(tmp_path.glob(".*.tmp"))


def test_grey_labels_and_grey_saved_as_rgb(tmp_path):
    labels = RNG.integers(0, 4, (9, 11)).astype(np.uint8)
    Image.fromarray(labels).save(tmp_path / "grey.png")
    Image.fromarray(np.dstack([labels] * 3)).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_label(tmp_path / "grey.png"), labels)
    np.testing.assert_array_equal(read_label(tmp_path / "rgb.png"), labels)


def test_colour_label_and_out_of_range_values_are_refused_with_the_file_named(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "colour.png")
    with pytest.raises(ImageReadError, match="colour.png: a label must be single-channel"):
        read_label(tmp_path / "colour.png")
    labels = np.array([[0, 1], [7, 255]], np.uint8)
    Image.fromarray(labels).save(tmp_path / "range.png")
    with pytest.raises(ImageReadError, match="range.png: label values 7 are not classes"):
        read_label(tmp_path / "range.png", num_classes=3)
