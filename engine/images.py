"""Reading images and reading/writing label maps, the same way for display, training and inference."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.atomic import atomic_path, atomic_write_bytes
from engine.classes import SegClass, palette
from engine.safe_files import is_regular, read_regular

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
IGNORE_INDEX = 255

# Whole-slide sized images are legitimate here; Pillow's default guard stops at ~179 megapixels. Our own
# limit (`max_pixels`, from SEGASSIST_MAX_PIXELS) is checked from the header before anything is decoded.
Image.MAX_IMAGE_PIXELS = None
DEFAULT_MAX_PIXELS = 1_000_000_000

_EXIF_ORIENTATION = 0x0112


class ImageReadError(ValueError):
    """An image or label file that cannot be used; the message names the file and the problem."""


def max_pixels() -> int:
    """The largest image (in pixels) that is read: SEGASSIST_MAX_PIXELS, else 1e9 (3 GB as RGB)."""
    try:
        return max(1, int(os.environ.get("SEGASSIST_MAX_PIXELS", DEFAULT_MAX_PIXELS)))
    except ValueError:
        return DEFAULT_MAX_PIXELS


def _check_pixels(path: Path, h: int, w: int) -> None:
    limit = max_pixels()
    if h * w > limit:
        raise ImageReadError(f"{path}: {w} x {h} pixels ({h * w:,}) is over the limit of {limit:,} pixels; "
                             "set SEGASSIST_MAX_PIXELS to read larger images")


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_image_file(p))


def read_image(path: str | Path) -> np.ndarray:
    """An image file as uint8 RGB `[H, W, 3]`, upright per its EXIF orientation.

    Grey images are repeated to three channels, alpha is dropped, and deeper images (16-bit, float) are
    scaled linearly so that the image's maximum (at least 255 for integers, 1.0 for floats) becomes 255.
    Raises `ImageReadError` naming the file when it is missing, unreadable, not an image, or larger
    than `max_pixels()` (checked from the header, before decoding).
    """
    path = Path(path)
    data = _read_bytes(path)
    try:
        orientation = _header_check(path, data)
        try:
            arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error:
            arr = None
        if arr is None:
            arr = _decode_with_pillow(path, data)
        elif arr.ndim == 3 and arr.shape[2] >= 3:
            arr = cv2.cvtColor(arr[..., :3], cv2.COLOR_BGR2RGB)
        arr = _to_uint8(path, arr)
    except MemoryError as exc:
        raise ImageReadError(f"{path}: not enough memory to decode this image") from exc
    except ImageReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is this file's problem, said as such
        raise ImageReadError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from exc
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageReadError(f"{path}: unsupported image layout {arr.shape}")
    return np.ascontiguousarray(_apply_orientation(arr, orientation))


def _header_check(path: Path, data: bytes) -> int:
    """The EXIF orientation from the header, after checking the size against the pixel limit."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            orientation = _orientation(im)
    except Exception:  # noqa: BLE001 - Pillow does not know it: OpenCV may
        return 1
    _check_pixels(path, h, w)
    return orientation


def _orientation(im: Image.Image) -> int:
    """EXIF orientation from what the header holds (a PNG's eXIf chunk only when it precedes the pixels:
    `getexif` would decode the whole PNG to look after them)."""
    try:
        if im.format == "PNG":
            raw = im.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
        else:
            exif = im.getexif()
        value = exif.get(_EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - EXIF is optional; a broken block never stops an image from loading
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image as `read_image` returns it, from the header only where Pillow knows
    the format. Raises `ImageReadError` naming the file (unreadable, or over `max_pixels()`)."""
    path = Path(path)
    if os.path.lexists(path) and not is_regular(path):
        raise ImageReadError(f"{path}: not a regular file (a FIFO, device or folder)")
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = _orientation(im)
    except FileNotFoundError as exc:
        raise ImageReadError(f"{path}: no such file") from exc
    except Exception:  # noqa: BLE001 - Pillow does not know it: decode it to find out
        return read_image(path).shape[:2]
    _check_pixels(path, h, w)
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def read_label(path: str | Path, num_classes: int | None = None) -> np.ndarray:
    """A label PNG as uint8 `[H, W]` of class indices (255 = not labelled).

    Accepts palette ('P') and grey PNGs (and RGB ones whose three channels are equal). With
    `num_classes`, values other than 255 must be below it. Raises `ImageReadError` naming the file.
    """
    path = Path(path)
    data = _read_bytes(path)
    try:
        with Image.open(io.BytesIO(data)) as im:
            _check_pixels(path, im.size[1], im.size[0])
            im.load()
            mode = im.mode
            arr = np.asarray(im)
    except ImageReadError:
        raise
    except MemoryError as exc:
        raise ImageReadError(f"{path}: not enough memory to decode this label image") from exc
    except Exception as exc:  # noqa: BLE001 - any decoder failure is this file's problem
        raise ImageReadError(f"{path}: not a readable label image: {decoder_reason(exc)}") from exc
    if arr.ndim == 3:
        if arr.shape[2] >= 3 and np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
            arr = arr[..., 0]
        else:
            raise ImageReadError(
                f"{path}: a label must be single-channel (a class index per pixel, 255 = not labelled); "
                f"this is a {mode} colour image"
            )
    if arr.dtype != np.uint8 and not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
        raise ImageReadError(f"{path}: label values must be integers (class indices); this is a {mode} image "
                             f"of {arr.dtype} values")
    if arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ImageReadError(f"{path}: label values must lie in 0-255, found {arr.min()}..{arr.max()}")
        arr = arr.astype(np.uint8)
    if num_classes is not None:
        bad = np.unique(arr[(arr >= num_classes) & (arr != IGNORE_INDEX)])
        if bad.size:
            raise ImageReadError(
                f"{path}: label values {', '.join(map(str, bad[:8]))} are not classes "
                f"(expected 0-{num_classes - 1}, or 255 for not labelled)"
            )
    return arr


def write_label(path: str | Path, labels: np.ndarray, classes: Iterable[SegClass] = ()) -> Path:
    """Write class indices `[H, W]` (uint8) as a palette PNG coloured by `classes`, atomically."""
    path = Path(path)
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{path}: labels must be [H, W], got shape {labels.shape}")
    if labels.dtype != np.uint8:
        if labels.size and (labels.min() < 0 or labels.max() > 255):
            raise ValueError(f"{path}: label values must lie in 0-255")
        labels = labels.astype(np.uint8)
    im = Image.fromarray(labels, mode="P")
    im.putpalette(palette(list(classes)))
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG", optimize=False, compress_level=1)
    return path


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write uint8 RGB `[H, W, 3]` or grey `[H, W]` to `path` (format from the suffix), atomically."""
    path = Path(path)
    ext = path.suffix.lower() or ".png"
    arr = np.asarray(image)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, arr)
    if not ok:
        raise ValueError(f"{path}: cannot encode an image as {ext}")
    return atomic_write_bytes(path, buf.tobytes())


def _read_bytes(path: Path) -> bytes:
    """A regular file's bytes (a FIFO or device is refused without blocking), at most what an image of
    `max_pixels()` could take (four bytes a pixel, a megabyte of header)."""
    try:
        data = read_regular(path, 4 * max_pixels() + (1 << 20))
    except FileNotFoundError as exc:
        raise ImageReadError(f"{path}: no such file") from exc
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not data:
        raise ImageReadError(f"{path}: the file is empty")
    return data


def decoder_reason(exc: Exception) -> str:
    """A decoder's complaint as a person reads it: never the in-memory buffer's repr Pillow puts in it."""
    if isinstance(exc, UnidentifiedImageError):
        return "not an image format SegAssist can read, or the file is damaged"
    text = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(exc)).strip(" :")
    return text or type(exc).__name__


def _decode_with_pillow(path: Path, data: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
                im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
            arr = np.asarray(im)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: not a readable image: {decoder_reason(exc)}") from exc
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        arr = arr[..., : arr.shape[2] - 1]  # drop alpha
    return arr


def _to_uint8(path: Path, arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        top = max(float(arr.max()), 1.0)
        return np.clip(arr * (255.0 / top), 0, 255).round().astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        arr = np.clip(arr, 0, None)
        top = max(int(arr.max()), 255)
        return (arr.astype(np.float32) * (255.0 / top)).round().astype(np.uint8)
    raise ImageReadError(f"{path}: unsupported pixel type {arr.dtype}")


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Turn pixels stored with EXIF `orientation` upright."""
    if orientation == 2:
        return arr[:, ::-1]
    if orientation == 3:
        return arr[::-1, ::-1]
    if orientation == 4:
        return arr[::-1]
    if orientation == 5:
        return arr.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(arr, k=-1)
    if orientation == 7:
        return arr.transpose(1, 0, 2)[::-1, ::-1]
    if orientation == 8:
        return np.rot90(arr, k=1)
    return arr
