"""The architectures; importing this package registers them."""

from engine.models import ccnet, deeplabv3plus, encnet, segmenter, setr  # noqa: F401
from engine.models.base import SegModel

__all__ = ["SegModel"]
