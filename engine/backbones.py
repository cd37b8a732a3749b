"""The backbones each architecture offers: its paper's backbone first, then the others of its family.

The list itself, and building a backbone, are `engine.timm_backbones`' (re-exported here), which knows no
architecture; this module sits above `engine.registry`, so the models never depend on it.
"""

from __future__ import annotations

from engine.registry import architecture_class
from engine.timm_backbones import BACKBONES, Backbone, describe_origin

__all__ = ["BACKBONES", "Backbone", "backbone_family", "backbones_for", "describe_origin", "quick_backbone"]


def backbone_family(arch: str) -> str:
    """"cnn" or "vit": the family of the architecture's paper backbone."""
    default = architecture_class(arch).default_backbone
    family = next((b.family for b in BACKBONES if b.name == default), None)
    if family is None:
        raise ValueError(f"{arch}: its default backbone {default!r} is not in engine.timm_backbones.BACKBONES")
    return family


def backbones_for(arch: str, *, tests: bool = False) -> list[Backbone]:
    """The backbones offered for `arch`: its paper backbone first, then the others of its family.

    timm's tiny test models are included only with `tests`.
    """
    default = architecture_class(arch).default_backbone
    family = [b for b in BACKBONES if b.family == backbone_family(arch) and (tests or not b.test)]
    return sorted(family, key=lambda b: b.name != default)


def quick_backbone(arch: str) -> str:
    """A small backbone of `arch`'s family that trains in minutes on a CPU (preselected for new models)."""
    return next(b.name for b in backbones_for(arch) if b.quick)
