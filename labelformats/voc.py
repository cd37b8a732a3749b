"""Pascal VOC segmentation: `SegmentationClass/<stem>.png` masks and the `labelmap.txt` datumaro and CVAT use.

VOC's own masks are palette PNGs whose index is the class (255 = border, not labelled). Other tools
(datumaro, CVAT) save them as RGB colour images instead, coloured by `labelmap.txt` (`name:r,g,b:parts:
actions` per line, a label's value is its line) or, without one, by VOC's colour table; both forms read
here. The label `ignored` and VOC's void colour (224, 224, 192) are not labelled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.classes import VOID_COLOR, SegClass, void_color
from labelformats.base import IGNORE_INDEX, UNLABELLED, FormatError, Item, SourceClass, check_shape
from labelformats.masks import VOID_LABEL, ColorSource, _MaskSource, open_mask
from labelformats.tables import VOC_CLASSES, voc_palette

LABELMAP = "labelmap.txt"
SEGMENTATION_DIR = "SegmentationClass"


def voc_labelmap(classes: list[SegClass]) -> str:
    """`labelmap.txt` for a VOC export: one line per class in index order, then `ignored` for 255."""
    bad = [c.name for c in classes if ":" in c.name or "\n" in c.name or c.name == VOID_LABEL]
    if bad:
        raise FormatError(f"class {bad[0]!r}: labelmap.txt cannot hold a class named {VOID_LABEL!r} or a name with "
                          "':' or a line break; rename the class to export VOC")
    lines = ["# label:color_rgb:parts:actions"]
    lines += [f"{c.name}:{','.join(map(str, c.color))}::" for c in classes]
    lines.append(f"{VOID_LABEL}:{','.join(map(str, void_color(classes)))}::")
    return "\n".join(lines) + "\n"


def read_labelmap(path: Path) -> list[tuple[str, tuple[int, int, int] | None]]:
    """(name, colour or None) per label line of a `labelmap.txt`, in order."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: cannot be read ({exc})") from exc
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) != 4:
            raise FormatError(f"{path}: line {n} needs 4 ':'-separated fields (name:r,g,b:parts:actions): {line!r}")
        color = None
        if fields[1].strip():
            try:
                color = tuple(int(v) for v in fields[1].split(","))
            except ValueError:
                color = ()
            if len(color) != 3 or not all(0 <= v <= 255 for v in color):
                raise FormatError(f"{path}: line {n}: the colour must be r,g,b with values 0-255: {fields[1]!r}")
        rows.append((fields[0], color))
    return rows


class VocSource(_MaskSource):
    """VOC `SegmentationClass` masks, palette or RGB, named by `labelmap.txt` or VOC's 21 classes."""

    format = "voc"

    def __init__(self, folder: str | Path, labelmap: Path | None = None):
        root = Path(folder)
        super().__init__(root / SEGMENTATION_DIR if (root / SEGMENTATION_DIR).is_dir() else root)
        labelmap = labelmap or next((p / LABELMAP for p in (root, self.folder.parent) if (p / LABELMAP).is_file()),
                                    None)
        pal = voc_palette()
        if labelmap is not None:  # a label without a colour has VOC's colour of its value, as datumaro paints it
            rows = [(name, color or (VOID_COLOR if name == VOID_LABEL else pal[i]))
                    for i, (name, color) in enumerate(read_labelmap(labelmap))]
        else:
            rows = [(name, pal[i]) for i, name in enumerate(VOC_CLASSES)]
        self._classes = [SourceClass(i, name, color) for i, (name, color) in enumerate(rows) if name != VOID_LABEL]
        self._void = [i for i, (name, _) in enumerate(rows) if name == VOID_LABEL]
        voids = [color for name, color in rows if name == VOID_LABEL] or [VOID_COLOR]
        self._by_color = ColorSource(self.folder, [(c.color, c.name) for c in self._classes], void=voids)

    def classes(self) -> list[SourceClass]:
        return self._classes

    def read(self, item: Item, shape=None) -> np.ndarray:
        arr, mode, _ = open_mask(item.path)
        if mode in ("P", "PA", "L", "I;16", "I") and arr.ndim == 2:
            out = check_shape(item.path, arr, shape).astype(np.int32)
            out[np.isin(arr, [IGNORE_INDEX, *self._void])] = UNLABELLED
            known = {c.id for c in self._classes}
            bad = sorted(set(np.unique(out).tolist()) - known - {UNLABELLED})
            if bad:
                raise FormatError(f"{item.path}: values {', '.join(map(str, bad[:8]))} are not VOC classes"
                                  + (" of its labelmap.txt" if len(self._classes) != len(VOC_CLASSES) else ""))
            return out
        ids = self._by_color.read(item, shape)
        # ColorSource numbers the classes by their order; map back to the labelmap's values.
        order = np.array([c.id for c in self._classes], np.int32)
        return np.where(ids >= 0, order[np.maximum(ids, 0)], UNLABELLED).astype(np.int32)
