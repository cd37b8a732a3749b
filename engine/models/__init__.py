"""The built-in architectures, which `engine.registry` registers on first use (each under its `arch`)."""

from engine.models.base import SegModel
from engine.models.ccnet import CCNet
from engine.models.deeplabv3plus import DeepLabV3Plus
from engine.models.encnet import EncNet
from engine.models.segmenter import SegmenterLinear, SegmenterMask
from engine.models.setr import SETRMLA, SETRPUP, SETRNaive

ARCHITECTURES: tuple[type[SegModel], ...] = (
    DeepLabV3Plus, EncNet, CCNet, SETRNaive, SETRPUP, SETRMLA, SegmenterLinear, SegmenterMask,
)

__all__ = ["ARCHITECTURES", "SegModel"]
