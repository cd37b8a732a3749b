"""Every import format by name: `open_source(fmt, path, ...)` gives its `LabelSource`."""

from __future__ import annotations

from pathlib import Path

from engine.classes import SegClass
from labelformats.base import IGNORE_INDEX, FormatError, LabelSource
from labelformats.coco import CocoPanopticSource, CocoSource
from labelformats.labelme import LabelmeSource
from labelformats.masks import MASKS_DIR, ClassTable, ColorSource, IndexSource, PaletteSource, read_class_map, table_of
from labelformats.tables import CAMVID32, CAMVID_VOID, CITYSCAPES_LABELS, camvid_colors
from labelformats.voc import SEGMENTATION_DIR, VocSource

IMPORT_FORMATS = {
    "index": "single-channel PNG/TIFF masks (8 or 16 bit): value = class; --classes names another numbering",
    "palette": "palette PNGs: the palette index is the class, matched by --classes names or by colour",
    "rgb": "RGB colour masks with a colour table (--classes classes.json; default: the project's colours)",
    "labelme": "labelme JSON files (polygon, rectangle, circle, line, point and mask shapes)",
    "coco": "COCO instances or COCO-Stuff JSON (polygons and RLE), through pycocotools",
    "coco-panoptic": "COCO panoptic JSON with its folder of PNGs (beside it, same name)",
    "voc": "Pascal VOC: SegmentationClass palette or RGB PNGs, VOC's 21 classes or labelmap.txt's (255 = not labelled)",
    "cityscapes": "Cityscapes gtFine *_labelIds (mapped to the 19 trainId classes, the rest not labelled) or "
                  "*_labelTrainIds",
    "camvid32": "CamVid colour masks in the 32-class colours (Void = not labelled)",
    "camvid11": "CamVid colour masks, 11- or 32-class colours, read into SegNet's 11 classes",
}


def open_source(fmt: str, path: str | Path, *, classes_file: str | Path | None = None,
                project_classes: list[SegClass] | None = None, ignore: int | None = IGNORE_INDEX,
                masks: str | Path | None = None) -> LabelSource:
    """The reader of `fmt` on `path` (a folder, or a JSON file for coco formats).

    `classes_file` (see `read_class_map`) names the values of index/palette masks and gives the colour
    table of RGB masks; `ignore` is the value that means "not labelled" in index and palette masks.
    """
    path = Path(path)
    if not path.exists():
        raise FormatError(f"{path}: no such file or folder")
    table = read_class_map(classes_file) if classes_file is not None else None
    ignored = () if ignore is None else (ignore,)
    if fmt in ("index", "palette", "rgb") and (path / MASKS_DIR).is_dir():
        path = path / MASKS_DIR  # our export's and datumaro's layout: masks/ beside images/
    if fmt == "index":
        return IndexSource(path, table, ignore=ignored)
    if fmt == "palette":
        return PaletteSource(path, table, ignore=ignored)
    if fmt == "rgb":
        table = table or (table_of(project_classes) if project_classes else None)
        if table is None or not table.colors:
            raise FormatError(f"{classes_file or path}: RGB masks need a colour table (a class map with colours)")
        void = [table.unlabelled_color] if table.unlabelled_color is not None else []
        return ColorSource(path, table.color_rows(), void=void)
    if fmt == "labelme":
        return LabelmeSource(path)
    if fmt == "coco":
        return CocoSource(path)
    if fmt == "coco-panoptic":
        return CocoPanopticSource(path, masks)
    if fmt == "voc":
        if table is not None:
            folder = path / SEGMENTATION_DIR if (path / SEGMENTATION_DIR).is_dir() else path
            return PaletteSource(folder, table, ignore=(IGNORE_INDEX,))
        return VocSource(path)
    if fmt == "cityscapes":
        if any(path.rglob("*_gtFine_labelIds.png")):
            names = {label_id: name for label_id, name, train, _ in CITYSCAPES_LABELS if train != IGNORE_INDEX}
            colors = {label_id: c for label_id, _, train, c in CITYSCAPES_LABELS if train != IGNORE_INDEX}
            void = [label_id for label_id, _, train, _ in CITYSCAPES_LABELS if train == IGNORE_INDEX]
            return IndexSource(path, ClassTable(names, colors), ignore=void + [IGNORE_INDEX],
                               pattern="*_gtFine_labelIds.png", recursive=True)
        by_train = {train: (name, c) for _, name, train, c in CITYSCAPES_LABELS if train != IGNORE_INDEX}
        table = table or ClassTable({t: n for t, (n, _) in by_train.items()}, {t: c for t, (_, c) in by_train.items()})
        return IndexSource(path, table, ignore=(IGNORE_INDEX,), pattern="*_labelTrainIds.png", recursive=True)
    if fmt in ("camvid32", "camvid11"):
        void = [c for c, n in CAMVID32 if n == CAMVID_VOID]
        return ColorSource(path, camvid_colors(int(fmt[6:])), void=void)
    raise ValueError(f"unknown import format {fmt!r}; known: {', '.join(IMPORT_FORMATS)}")
