"""What every format shares: the error type, a source of labels in its own classes, the class mapping.

A reader (`LabelSource`) lists its items (one per image) and its classes (`SourceClass`: an id, and a
name and/or colour where the format has them) and reads each item as an int32 map of source ids, -1
where nothing is labelled. A `ClassMapping` turns source ids into the project's class indices (or 255);
classes the project lacks are added, mapped or dropped, as the person chose.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.classes import SegClass, as_classes, default_color
from engine.safe_files import read_regular

IGNORE_INDEX = 255
UNLABELLED = -1  # a source map's "nothing here"
MAX_CLASSES = 255
UNKNOWN_POLICIES = ("error", "add", "drop")
# Label files are often named after their image plus a tag; these are stripped to pair them.
LABEL_SUFFIXES = ("_gtFine_labelTrainIds", "_gtFine_labelIds", "_gtFine_color", "_labelTrainIds", "_labelIds",
                  "_L", "_mask", "_label", "_labels")
IMAGE_SUFFIXES = ("_leftImg8bit",)


class FormatError(ValueError):
    """Input that does not fit its format; the message names the file and the problem."""


@dataclass(frozen=True)
class SourceClass:
    """A class as the source names it: its id in the source maps, its name and colour where known."""

    id: int
    name: str | None = None
    color: tuple[int, int, int] | None = None

    @property
    def label(self) -> str:
        return self.name if self.name is not None else (f"value {self.id}" if self.color is None
                                                        else f"colour {self.color}")


@dataclass(frozen=True)
class Item:
    """One image's labels in a source: the key that pairs it with an image (a stem) and the file read."""

    key: str
    path: Path
    index: int = 0  # position inside a multi-image file (COCO)


class LabelSource:
    """A set of label files in one format. Subclasses set `format` and implement `items` and `read`."""

    format = ""

    def items(self) -> list[Item]:
        raise NotImplementedError

    def classes(self) -> list[SourceClass]:
        """Every class the source may use (readers without a table scan their files)."""
        raise NotImplementedError

    def notes(self) -> list[str]:
        """What the reader passed over or read in a way the person should know of (one line each)."""
        return []

    def classes_for(self, ids: Iterable[int]) -> list[SourceClass]:
        """The classes with these ids (the ones a scan of the files found), in id order."""
        ids = set(ids)
        return [c for c in self.classes() if c.id in ids]

    def read(self, item: Item, shape: tuple[int, int] | None = None) -> np.ndarray:
        """The item's labels as int32 source ids (-1 = not labelled).

        With `shape` (height, width of the image), a map of another size raises `FormatError`.
        """
        raise NotImplementedError


def read_bytes(path: Path, what: str = "file") -> bytes:
    """A label file's bytes: regular files only (a FIFO or device is refused without blocking), within
    the size limit. Raises `FormatError` naming the file."""
    try:
        return read_regular(path)
    except FileNotFoundError as exc:
        raise FormatError(f"{path}: no such file") from exc
    except OSError as exc:
        raise FormatError(f"{path}: cannot be read as a {what} ({exc.strerror or exc})") from exc


def load_json(path: Path, what: str = "JSON file"):
    """A JSON document from a regular file; every failure (unreadable, not UTF-8, not JSON, nested too
    deeply) is a `FormatError` naming the file."""
    data = read_bytes(path, what)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    except RecursionError as exc:
        raise FormatError(f"{path}: JSON nested too deeply to be a {what}") from exc


def is_number(value) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_class(where: str, name, color=None) -> None:
    """Refuse a class name or colour the project could not keep: a name that is not text, empty, with a
    lone surrogate or control characters, or over 200 characters; a colour that is not three integers 0-255."""
    if not isinstance(name, str) or not name.strip():
        raise FormatError(f"{where}: a class name must be non-empty text, got {name!r}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FormatError(f"{where}: the class name {name!r} is not valid text ({exc.reason})") from None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name) or len(name) > 200:
        raise FormatError(f"{where}: the class name {name[:60]!r} has control characters or is over 200 characters")
    if color is not None and (not isinstance(color, list | tuple) or len(color) != 3 or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in color)):
        raise FormatError(f"{where}: class {name!r}: a colour must be three integers 0-255, got {color!r}")


DENSE_IDS = 1 << 16  # source ids below this are counted with a table; larger ones are sorted


def present_ids(ids: np.ndarray) -> list[int]:
    """The distinct values of a source map (-1 included when present), in order; sparse ids cost no table."""
    ids = np.asarray(ids)
    if not ids.size:
        return []
    if int(ids.min()) >= UNLABELLED and int(ids.max()) < DENSE_IDS:
        return (np.flatnonzero(np.bincount(ids.ravel() + 1)) - 1).tolist()
    return np.unique(ids).tolist()


def check_shape(path: Path, arr: np.ndarray, shape: tuple[int, int] | None) -> np.ndarray:
    if shape is not None and tuple(arr.shape[:2]) != tuple(shape):
        raise FormatError(f"{path}: labels of {arr.shape[1]}x{arr.shape[0]} pixels for an image of "
                          f"{shape[1]}x{shape[0]} (width x height)")
    return arr


def strip_suffix(stem: str, suffixes: Iterable[str] = LABEL_SUFFIXES) -> str:
    for suffix in suffixes:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


@dataclass
class ClassMapping:
    """Source id -> project class index (255 = dropped), and the classes to append to the project first."""

    targets: dict[int, int]
    classes: list[SegClass]  # the project's classes after the import (existing ones first, then added)
    added: list[SegClass] = field(default_factory=list)
    dropped: list[SourceClass] = field(default_factory=list)
    sources: list[SourceClass] = field(default_factory=list)

    def lookup(self, size: int) -> np.ndarray:
        """A table for `apply`: index = source id + 1 (so -1 maps too), value = project class or 255."""
        table = np.full(size + 1, IGNORE_INDEX, np.uint8)
        for sid, target in self.targets.items():
            if 0 <= sid < size:
                table[sid + 1] = target
        return table

    def apply(self, source_ids: np.ndarray, path: Path | None = None) -> np.ndarray:
        """A uint8 label map of project classes. An id outside the mapping raises `FormatError`."""
        ids = np.asarray(source_ids)
        if not ids.size:
            return np.zeros(ids.shape, np.uint8)
        top = int(ids.max())
        inverse = None
        if int(ids.min()) >= UNLABELLED and top < DENSE_IDS:
            present = present_ids(ids)
        else:  # sparse ids (a COCO category id of 10**9): no table that long
            present, inverse = np.unique(ids, return_inverse=True)
            present = present.tolist()
        missing = [v for v in present if v != UNLABELLED and v not in self.targets]
        if missing:
            raise FormatError(f"{path or 'labels'}: class value{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(map(str, missing[:8]))} not in the class mapping")
        if inverse is None:
            return self.lookup(top + 1)[ids + 1]
        table = np.array([IGNORE_INDEX if v == UNLABELLED else self.targets[v] for v in present], np.uint8)
        return table[inverse.reshape(ids.shape)]

    def rows(self) -> list[tuple[str, str]]:
        """(source class, what it becomes) for a preview."""
        out = []
        for s in self.sources:
            target = self.targets.get(s.id, IGNORE_INDEX)
            if target == IGNORE_INDEX:
                what = "dropped (not labelled, 255)"
            else:
                cls = self.classes[target]
                what = f"{target}: {cls.name}" + (" (new class)" if cls in self.added else "")
            out.append((s.label, what))
        return out


def plan_mapping(sources: Iterable[SourceClass], classes: Iterable[SegClass | str], *,
                 overrides: Mapping[str, str | None] | None = None, unknown: str = "error",
                 where: str = "the source", seen_in: Mapping[int, Path] | None = None) -> ClassMapping:
    """Map source classes onto the project's classes.

    Each source class goes, in this order: where `overrides` says (keyed by its name, `value N` or its
    id as text; a project class name, a new name to add, or None to drop it); to the project class of the
    same name (case and surrounding blanks ignored); without a name, to the class of the same colour,
    or, with neither name nor colour, to the class of the same index. The rest follow `unknown`:
    `"add"` appends them as new classes, `"drop"` maps them to 255, `"error"` raises `FormatError`
    listing them.
    """
    if unknown not in UNKNOWN_POLICIES:
        raise ValueError(f"unknown must be one of {', '.join(UNKNOWN_POLICIES)}, not {unknown!r}")
    sources = list(sources)
    project = as_classes(classes)
    existing = len(project)
    overrides = dict(overrides or {})
    by_name = {_norm(c.name): i for i, c in enumerate(project)}
    by_color = {}
    for i, c in enumerate(project):
        by_color.setdefault(tuple(c.color), i)
    targets: dict[int, int] = {}
    added: list[SegClass] = []
    dropped: list[SourceClass] = []
    missing: list[SourceClass] = []

    def add(name: str, color) -> int:
        check_class(where, name, color)
        if _norm(name) in by_name:
            return by_name[_norm(name)]
        if len(project) >= MAX_CLASSES:
            raise FormatError(f"{where}: adding {name!r} would make more than {MAX_CLASSES} classes")
        color = tuple(color) if color is not None else default_color(len(project))
        new = SegClass(name, color)
        project.append(new)
        added.append(new)
        by_name[_norm(name)] = len(project) - 1
        return len(project) - 1

    for s in sources:
        key = next((k for k in (s.name, s.label, str(s.id)) if k is not None and k in overrides), None)
        if key is not None:
            target = overrides[key]
            if target is None or _norm(target) in ("", "255", "drop"):
                targets[s.id] = IGNORE_INDEX
                dropped.append(s)
            else:
                targets[s.id] = add(target, s.color if _norm(target) not in by_name else None)
            continue
        if s.name is not None and _norm(s.name) in by_name:
            targets[s.id] = by_name[_norm(s.name)]
        elif s.name is None and s.color is not None and tuple(s.color) in by_color:
            targets[s.id] = by_color[tuple(s.color)]
        elif s.name is None and s.color is None and 0 <= s.id < existing:
            targets[s.id] = s.id
        elif unknown == "add":
            targets[s.id] = add(s.name if s.name is not None else _new_name(s), s.color)
        elif unknown == "drop":
            targets[s.id] = IGNORE_INDEX
            dropped.append(s)
        else:
            missing.append(s)
    if missing:
        seen_in = seen_in or {}
        names = ", ".join(repr(s.label) + (f" (in {seen_in[s.id]})" if s.id in seen_in else "")
                          for s in missing[:12]) + (" …" if len(missing) > 12 else "")
        raise FormatError(f"{where}: {len(missing)} class{'es' if len(missing) > 1 else ''} the project lacks: "
                          f"{names}; add them, map them to a project class, or drop them to 255")
    return ClassMapping(targets, project, added, dropped, sources)


def _norm(name: str) -> str:
    return name.strip().casefold()


def _new_name(s: SourceClass) -> str:
    return f"class {s.id}"


@dataclass
class ExportItem:
    """One image to export: its file, its labels (uint8 project classes, 255 = not labelled), its split."""

    stem: str
    image_path: Path
    labels: np.ndarray | None = None
    split: str = "train"
    loader: Callable[[], np.ndarray] | None = None  # reads the labels when they are needed

    def read(self) -> np.ndarray:
        return self.labels if self.labels is not None else self.loader()


class Written:
    """The files an export has written so far; on failure they are removed (nothing half-written stays)."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def add(self, path: Path) -> Path:
        self.paths.append(Path(path))
        return Path(path)

    def remove_all(self) -> None:
        for path in reversed(self.paths):
            Path(path).unlink(missing_ok=True)
        self.paths.clear()
