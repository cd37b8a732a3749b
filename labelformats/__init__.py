"""Label formats of other tools, in and out, with no Qt and no app: masks (index, palette, RGB, 16-bit),
labelme, COCO (instances, stuff, panoptic), Pascal VOC, Cityscapes, CamVid, YOLO segmentation.

Readers give a `LabelSource` (`open_source`); `plan_mapping` maps its classes onto a project's;
`export` writes label maps in any export format. Errors are `FormatError`s naming the file.
"""

from labelformats.base import (
    IGNORE_INDEX,
    UNKNOWN_POLICIES,
    ClassMapping,
    ExportItem,
    FormatError,
    Item,
    LabelSource,
    SourceClass,
    plan_mapping,
    strip_suffix,
)
from labelformats.export import EXPORT_FORMATS, LOSSLESS, export
from labelformats.readers import IMPORT_FORMATS, open_source

__all__ = ["EXPORT_FORMATS", "IGNORE_INDEX", "IMPORT_FORMATS", "LOSSLESS", "UNKNOWN_POLICIES", "ClassMapping",
           "ExportItem", "FormatError", "Item", "LabelSource", "SourceClass", "export", "open_source", "plan_mapping",
           "strip_suffix"]
