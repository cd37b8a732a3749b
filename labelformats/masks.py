"""Label masks as images: index PNGs (8 or 16 bit), palette PNGs, RGB colour masks; and the class map file.

Readers give source ids; `ClassTable` (from a class map file, or built in) names them. Writers take
the project's labels (uint8, 255 = not labelled) and write one PNG per image plus `classes.json`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.atomic import atomic_path, atomic_write_bytes
from engine.classes import SegClass, palette, void_color
from engine.images import max_pixels
from labelformats.base import (
    IGNORE_INDEX,
    UNLABELLED,
    ExportItem,
    FormatError,
    Item,
    LabelSource,
    SourceClass,
    Written,
    check_shape,
    load_json,
    read_bytes,
    strip_suffix,
)

MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")
CLASS_MAP = "classes.json"
DATASET_META = "dataset_meta.json"  # datumaro's class list
MASKS_DIR, IMAGES_DIR = "masks", "images"  # datumaro's common semantic segmentation layout
VOID_LABEL = "ignored"  # datumaro's name for VOC's 255
CLASS_MAP_FORMAT = "segassist-classes"
MAX_VALUE = 65535  # the largest class value of an index mask (16 bit)


@dataclass
class ClassTable:
    """Names (and colours) of a mask's values, from a class map file or a published table."""

    names: dict[int, str] = field(default_factory=dict)
    colors: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    unlabelled_color: tuple[int, int, int] | None = None

    def color_rows(self) -> list[tuple[tuple[int, int, int], str]]:
        return [(self.colors[i], self.names.get(i, f"class {i}")) for i in sorted(self.colors)]


def read_class_map(path: str | Path) -> ClassTable:
    """A class map: our `classes.json`, a `segassist.json`, datumaro's `dataset_meta.json`, a JSON list of
    names or `{name, color}`s, or text with one name per line (the line's index is its value), `VALUE NAME`
    per line, or `R G B NAME` per line (CamVid's `label_colors.txt`)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        doc = load_json(path, "class map")
        if isinstance(doc, dict) and ("label_map" in doc or "labels" in doc) and "classes" not in doc:
            return _dataset_meta(path, doc)
        rows = doc.get("classes") if isinstance(doc, dict) else doc
        if not isinstance(rows, list):
            raise FormatError(f"{path}: a class map needs a list of classes (or a 'classes' list)")
        table = ClassTable()
        if isinstance(doc, dict) and doc.get("unlabelled_color") is not None:
            table.unlabelled_color = _color(path, doc["unlabelled_color"])
        for i, row in enumerate(rows):
            if isinstance(row, str):
                table.names[i] = row
                continue
            if not isinstance(row, dict) or not isinstance(row.get("name"), str):
                raise FormatError(f"{path}: class {i}: expected a name or {{'name', 'color'}}, got {row!r}")
            index = row.get("index", row.get("id", i))
            if not isinstance(index, int):
                raise FormatError(f"{path}: class {row['name']!r}: the index must be an integer")
            table.names[index] = row["name"]
            if row.get("color") is not None:
                table.colors[index] = _color(path, row["color"])
        return table
    try:
        text = read_bytes(path, "class map").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: cannot be read as a class map ({exc})") from exc
    table = ClassTable()
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    for i, line in enumerate(lines):
        head, _, rest = line.partition(" ")
        fields = line.split(maxsplit=3)
        if len(fields) == 4 and all(f.isdigit() for f in fields[:3]):  # CamVid's label_colors.txt: R G B name
            table.names[i] = fields[3]
            table.colors[i] = _color(path, [int(f) for f in fields[:3]])
        elif head.isdigit() and rest.strip():
            table.names[int(head)] = rest.strip()
        else:
            table.names[i] = line
    return table


def _dataset_meta(path: Path, doc: dict) -> ClassTable:
    """datumaro's `dataset_meta.json`: `label_map` (value -> name) and `segmentation_colors` by value, or a
    `labels` list (value = position); the label `ignored` is not labelled."""
    label_map = doc.get("label_map") or dict(enumerate(doc.get("labels") or []))
    colors = doc.get("segmentation_colors") or []
    if not isinstance(label_map, dict) or not isinstance(colors, list):
        raise FormatError(f"{path}: 'label_map' must map values to names and 'segmentation_colors' be a list")
    table = ClassTable()
    for key, name in label_map.items():
        try:
            value = int(key)
        except (TypeError, ValueError):
            raise FormatError(f"{path}: label_map key {key!r} is not a number") from None
        if not isinstance(name, str):
            raise FormatError(f"{path}: label {key!r} must have a name, got {name!r}")
        color = _color(path, colors[value]) if value < len(colors) and colors[value] is not None else None
        if name == VOID_LABEL:
            table.unlabelled_color = color
            continue
        table.names[value] = name
        if color is not None:
            table.colors[value] = color
    return table


def table_of(classes: Iterable[SegClass]) -> ClassTable:
    classes = list(classes)
    return ClassTable({i: c.name for i, c in enumerate(classes)}, {i: tuple(c.color) for i, c in enumerate(classes)},
                      unlabelled_color(classes))


def unlabelled_color(classes: Iterable[SegClass]) -> tuple[int, int, int]:
    """The colour of not-labelled pixels in palette and RGB masks: VOC's (224, 224, 192), unless a class
    has it (see `engine.classes.void_color`)."""
    return void_color(classes)


def _color(path: Path, value) -> tuple[int, int, int]:
    if (not isinstance(value, list | tuple) or len(value) != 3
            or not all(isinstance(v, int) and 0 <= v <= 255 for v in value)):
        raise FormatError(f"{path}: a colour must be three integers 0-255, got {value!r}")
    return tuple(value)


def list_masks(folder: Path, pattern: str = "*", recursive: bool = False) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(f"{folder}: no such folder")
    found = folder.rglob(pattern) if recursive else folder.glob(pattern)
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in MASK_SUFFIXES)


def open_mask(path: Path) -> tuple[np.ndarray, str, list[int] | None]:
    """(pixels, PIL mode, flat palette or None) of a mask image; raises `FormatError` naming the file."""
    data = read_bytes(path, "mask image")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            limit = max_pixels()
            if h * w > limit:  # from the header, before anything is decoded
                raise FormatError(f"{path}: {w} x {h} pixels ({h * w:,}) is over the limit of {limit:,} pixels; "
                                  "set SEGASSIST_MAX_PIXELS to read larger images")
            im.load()
            mode = im.mode
            pal = im.getpalette() if mode in ("P", "PA") else None
            if mode == "PA":
                im = im.convert("P")
            arr = np.asarray(im)
    except FormatError:
        raise
    except MemoryError as exc:
        raise FormatError(f"{path}: not enough memory to decode this mask image") from exc
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise FormatError(f"{path}: not a readable mask image ({exc})") from exc
    return arr, mode, pal


class _MaskSource(LabelSource):
    """A folder of mask files, one per image, paired by file stem."""

    def __init__(self, folder: str | Path, *, pattern: str = "*", recursive: bool = False):
        self.folder = Path(folder)
        self.pattern, self.recursive = pattern, recursive
        self._items: list[Item] | None = None
        self._classes: list[SourceClass] | None = None

    def items(self) -> list[Item]:
        if self._items is None:
            self._items = [Item(strip_suffix(p.stem), p) for p in list_masks(self.folder, self.pattern,
                                                                             self.recursive)]
            if not self._items:
                raise FormatError(f"{self.folder}: no mask images ({', '.join(MASK_SUFFIXES)}) found")
        return self._items


class IndexSource(_MaskSource):
    """Single-channel masks (8 or 16 bit, grey or palette): the pixel value is the class.

    `table` names the values (another tool's numbering); without one, value v is the project's class v.
    Values in `ignore` are not labelled (default 255).
    """

    format = "index"

    def __init__(self, folder, table: ClassTable | None = None, *, ignore: Iterable[int] = (IGNORE_INDEX,),
                 **kwargs):
        super().__init__(folder, **kwargs)
        self.table = table
        self.ignore = frozenset(int(v) for v in ignore)

    def values(self, path: Path) -> np.ndarray:
        arr, mode, _ = open_mask(path)
        if arr.ndim == 3:
            if arr.shape[2] >= 3 and (arr[..., 0] == arr[..., 1]).all() and (arr[..., 0] == arr[..., 2]).all():
                arr = arr[..., 0]
            else:
                raise FormatError(f"{path}: a {mode} colour image, not an index mask (one class value per pixel); "
                                  "read colour masks with a colour table")
        if arr.dtype.kind not in "ui" or arr.ndim != 2:
            raise FormatError(f"{path}: unsupported mask pixels ({arr.dtype}, {mode})")
        if arr.dtype.itemsize > 2 or arr.dtype.kind == "i":  # 32-bit TIFFs: values must still be class ids
            low, top = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
            if low < 0 or top > MAX_VALUE:
                raise FormatError(f"{path}: mask values {low}..{top} ({arr.dtype}); an index mask holds class "
                                  f"values 0-{MAX_VALUE}")
        return arr

    def read(self, item: Item, shape=None) -> np.ndarray:
        arr = check_shape(item.path, self.values(item.path), shape)
        out = arr.astype(np.int32)
        if self.ignore:
            ignore = np.fromiter(self.ignore, np.int64)
            out[np.isin(arr, ignore)] = UNLABELLED
        return out

    def classes(self) -> list[SourceClass]:
        if self._classes is None:
            seen: set[int] = set()
            for item in self.items():
                arr = self.values(item.path)
                counts = np.bincount(arr.ravel().astype(np.int64))
                seen.update(np.flatnonzero(counts).tolist())
            self._classes = self.classes_for(seen)
        return self._classes

    def classes_for(self, ids) -> list[SourceClass]:
        ids = sorted(set(ids) - self.ignore)
        if self.table is None:
            return [SourceClass(v) for v in ids]
        return [SourceClass(v, self.table.names.get(v, f"value {v}"), self.table.colors.get(v)) for v in ids]


class PaletteSource(_MaskSource):
    """Palette PNGs: the palette index is the class, its colour (or `table`'s name for it) says which."""

    format = "palette"

    def __init__(self, folder, table: ClassTable | None = None, *, ignore: Iterable[int] = (IGNORE_INDEX,),
                 **kwargs):
        super().__init__(folder, **kwargs)
        self.table = table
        self.ignore = frozenset(int(v) for v in ignore)
        self._palette: list[int] | None = None

    def _open(self, path: Path) -> np.ndarray:
        arr, mode, pal = open_mask(path)
        if mode not in ("P", "PA") or pal is None:
            raise FormatError(f"{path}: not a palette PNG (mode {mode}); read it as an index or colour mask")
        if self._palette is None:
            self._palette = list(pal) + [0] * (768 - len(pal))
        return arr

    def read(self, item: Item, shape=None) -> np.ndarray:
        arr = check_shape(item.path, self._open(item.path), shape)
        out = arr.astype(np.int32)
        for v in self.ignore:
            out[arr == v] = UNLABELLED
        return out

    def classes(self) -> list[SourceClass]:
        if self._classes is None:
            seen: set[int] = set()
            for item in self.items():
                seen.update(np.flatnonzero(np.bincount(self._open(item.path).ravel(), minlength=256)).tolist())
            self._classes = self.classes_for(seen)
        return self._classes

    def classes_for(self, ids) -> list[SourceClass]:
        pal = self._palette or [0] * 768
        out = []
        for v in sorted(set(ids) - self.ignore):
            name = self.table.names.get(v) if self.table is not None else None
            color = self.table.colors.get(v) if self.table is not None and v in self.table.colors else None
            out.append(SourceClass(v, name, color or tuple(pal[3 * v: 3 * v + 3])))
        return out


class ColorSource(_MaskSource):
    """RGB colour masks with a colour -> class table (several colours may share a class); `void` colours
    are not labelled, any other colour raises `FormatError` naming the file and the colour."""

    format = "rgb"

    def __init__(self, folder, rows: Iterable[tuple[tuple[int, int, int], str]], *,
                 void: Iterable[tuple[int, int, int]] = (), **kwargs):
        super().__init__(folder, **kwargs)
        rows = list(rows)
        names = list(dict.fromkeys(name for _, name in rows))
        self._classes = [SourceClass(i, name, next(c for c, n in rows if n == name)) for i, name in enumerate(names)]
        codes = {_code(c): names.index(n) for c, n in rows}
        for c in void:
            codes.setdefault(_code(c), UNLABELLED)
        self._codes = np.array(sorted(codes), np.int64)
        self._ids = np.array([codes[c] for c in sorted(codes)], np.int32)

    def classes(self) -> list[SourceClass]:
        return self._classes

    def read(self, item: Item, shape=None) -> np.ndarray:
        arr, mode, _ = open_mask(item.path)
        if mode in ("P", "PA", "L", "LA") or arr.ndim == 2:
            with Image.open(io.BytesIO(read_bytes(item.path, "mask image"))) as im:
                arr = np.asarray(im.convert("RGB"))
        if arr.ndim != 3 or arr.shape[2] < 3:
            raise FormatError(f"{item.path}: not a colour mask ({mode})")
        check_shape(item.path, arr, shape)
        codes = _code_map(arr[..., :3])
        pos = np.searchsorted(self._codes, codes)
        pos = np.minimum(pos, len(self._codes) - 1)
        bad = self._codes[pos] != codes
        if bad.any():
            found, counts = np.unique(codes[bad], return_counts=True)
            order = np.argsort(-counts)[:5]
            listed = ", ".join(f"{_rgb(int(found[i]))} ({int(counts[i])} px)" for i in order)
            raise FormatError(f"{item.path}: {int(bad.sum())} pixels have colours that are not in the colour table: "
                              f"{listed}")
        return self._ids[pos]


def _code(color) -> int:
    r, g, b = (int(v) for v in color)
    return (r << 16) | (g << 8) | b


def _code_map(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _rgb(code: int) -> tuple[int, int, int]:
    return ((code >> 16) & 255, (code >> 8) & 255, code & 255)


# ---- writers -------------------------------------------------------------------------------------------

def write_class_map(path: Path, classes: list[SegClass], written: Written | None = None) -> Path:
    """`classes.json`: index, name and colour of every class; 255 = not labelled, and its RGB colour."""
    doc = {"format": CLASS_MAP_FORMAT, "ignore_index": IGNORE_INDEX,
           "unlabelled_color": list(unlabelled_color(classes)),
           "classes": [{"index": i, "name": c.name, "color": list(c.color)} for i, c in enumerate(classes)]}
    atomic_write_bytes(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return written.add(path) if written is not None else path


def check_labels(item: ExportItem, classes: list[SegClass]) -> np.ndarray:
    labels = np.asarray(item.read())
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise FormatError(f"{item.image_path}: labels must be uint8 [H, W], got {labels.dtype} {labels.shape}")
    counts = np.bincount(labels.ravel(), minlength=256)[:IGNORE_INDEX]
    top = int(np.flatnonzero(counts)[-1]) if counts.any() else -1
    if top >= len(classes):
        raise FormatError(f"{item.image_path}: label value {top} is not a class (the project has {len(classes)})")
    return labels


def write_png(path: Path, arr: np.ndarray, mode: str, pal: list[int] | None = None) -> Path:
    im = Image.fromarray(arr, mode=mode) if mode != "RGB" else Image.fromarray(arr)
    if pal is not None:
        im.putpalette(pal)
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG", compress_level=1)
    return path


def colorize(labels: np.ndarray, classes: list[SegClass]) -> np.ndarray:
    colors = {tuple(c.color) for c in classes}
    if len(colors) < len(classes):
        names = [c.name for c in classes]
        same = sorted({n for i, n in enumerate(names) if tuple(classes[i].color) in
                       [tuple(c.color) for j, c in enumerate(classes) if j != i]})
        raise FormatError(f"classes {', '.join(same)} share a colour, so an RGB mask cannot tell them apart; "
                          "give each class its own colour")
    lut = np.zeros((256, 3), np.uint8)
    lut[:] = unlabelled_color(classes)
    for i, c in enumerate(classes):
        lut[i] = c.color
    return lut[labels]


def write_masks(kind: str, items: Iterable[ExportItem], classes: list[SegClass], out: Path,
                written: Written, progress=None) -> int:
    """One PNG per image into `out/masks` (`index`: grey values, `palette`: palette PNG, `rgb`: colours),
    and beside it `classes.json` and datumaro's `dataset_meta.json` (its common semantic segmentation)."""
    out = Path(out)
    pal = palette(classes)
    n = 0
    for item in items:
        labels = check_labels(item, classes)
        path = out / MASKS_DIR / f"{item.stem}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "index":
            write_png(path, labels, "L")
        elif kind == "palette":
            write_png(path, labels, "P", pal)
        elif kind == "rgb":
            write_png(path, colorize(labels, classes), "RGB")
        else:
            raise ValueError(f"unknown mask kind {kind!r}")
        written.add(path)
        n += 1
        if progress is not None:
            progress(n)
    write_class_map(out / CLASS_MAP, classes, written)
    write_dataset_meta(out / DATASET_META, classes, written, colors=kind != "index")
    return n


def write_dataset_meta(path: Path, classes: list[SegClass], written: Written, *, colors: bool = True) -> Path:
    """datumaro's `dataset_meta.json`: the label names by value and, for colour masks, their colours, with
    not labelled (255) as `VOID_LABEL` in its colour (datumaro has no ignore value)."""
    names = [c.name for c in classes]
    doc: dict = {"labels": names, "label_map": {str(i): n for i, n in enumerate(names)}}
    if colors:
        table: list = [list(c.color) for c in classes] + [None] * (IGNORE_INDEX - len(classes))
        doc["labels"] = [*names, VOID_LABEL]
        doc["label_map"][str(IGNORE_INDEX)] = VOID_LABEL
        doc["segmentation_colors"] = [*table, list(unlabelled_color(classes))]
    black = next((i for i, c in enumerate(classes) if tuple(c.color) == (0, 0, 0)), None)
    if black is not None:
        doc["background_label"] = str(black)
    atomic_write_bytes(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return written.add(path)
