"""Class names and colours."""

from __future__ import annotations

import colorsys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from engine.class_palette import CLASS_COLORS, VOID_COLOR

MAX_CLASS_COUNT = 65_536  # uint16 label maps; a project allows at most 255

@dataclass(frozen=True)
class SegClass:
    """A class: its name and its RGB display colour."""

    name: str
    color: tuple[int, int, int]

    def to_json(self) -> dict:
        return {"name": self.name, "color": list(self.color)}


def default_color(index: int) -> tuple[int, int, int]:
    """The display colour of class `index` when none is given (see `engine.class_palette`)."""
    if index < len(CLASS_COLORS):
        return CLASS_COLORS[index]
    hue = (index * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.65 + 0.35 * (index % 2), 0.95 - 0.25 * (index % 3 == 0))
    return (round(r * 255), round(g * 255), round(b * 255))


def as_classes(classes: Iterable[str | SegClass | Mapping]) -> list[SegClass]:
    """Normalise names, `SegClass`es or `{"name", "color"}` dicts into `SegClass`es.

    Raises `ValueError` on empty or duplicate names and malformed colours.
    """
    if isinstance(classes, str | bytes | Mapping):
        raise ValueError(f"classes must be a list of names or {{'name', 'color'}} objects, got {classes!r:.80}")
    out: list[SegClass] = []
    seen: set[str] = set()
    dupes: set[str] = set()
    for i, c in enumerate(classes):
        if i >= MAX_CLASS_COUNT:
            raise ValueError(f"more than {MAX_CLASS_COUNT} classes; at most {MAX_CLASS_COUNT} are possible")
        if isinstance(c, SegClass):
            item = c
        elif isinstance(c, str):
            item = SegClass(c, default_color(i))
        elif isinstance(c, Mapping) and isinstance(c.get("name"), str):
            color = c.get("color")
            item = SegClass(c["name"], _check_color(color, c["name"]) if color is not None else default_color(i))
        else:
            raise ValueError(f"class {i}: expected a name or {{'name', 'color'}}, got {c!r}")
        if not item.name.strip():
            raise ValueError(f"class {i}: the name is empty")
        try:
            item.name.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"class {i}: the name {item.name!r} is not valid text ({exc.reason})") from None
        if item.name in seen:
            dupes.add(item.name)
        seen.add(item.name)
        out.append(item)
    if dupes:
        raise ValueError(f"class names must be unique; repeated: {', '.join(sorted(dupes)[:10])}")
    return out


def void_color(classes: Iterable[SegClass]) -> tuple[int, int, int]:
    """The colour of not-labelled pixels (255): VOC's (224, 224, 192), or the first free one of a few
    others when a class has it, so that a reader going by colour never takes them for a class."""
    used = {tuple(c.color) for c in classes}
    return next(c for c in (VOID_COLOR, (255, 255, 255), (128, 128, 128), (1, 1, 1), (254, 254, 254))
                if c not in used)


def palette(classes: Iterable[SegClass]) -> list[int]:
    """A flat 768-entry RGB palette for palette PNGs: class i -> its colour, 255 (not labelled) ->
    `void_color`, the unused entries black."""
    classes = list(classes)
    flat = [0] * 768
    for i, c in enumerate(classes[:255]):
        flat[3 * i : 3 * i + 3] = c.color
    flat[3 * 255 :] = void_color(classes)
    return flat


def _check_color(color: object, name: str) -> tuple[int, int, int]:
    if (not isinstance(color, list | tuple) or len(color) != 3
            or not all(isinstance(v, int) and 0 <= v <= 255 for v in color)):
        raise ValueError(f"class {name!r}: colour must be three integers 0-255, got {color!r}")
    return tuple(color)
