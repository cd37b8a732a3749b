"""`segassist.json`: its format, reading it with every problem named, salvaging a broken one, writing it.

    {"format": "segassist-project", "version": 1,
     "classes": [{"name", "color"}...], "settings": {...},
     "images": {file name: {"status", "mean_entropy"}}, "models": [model version...],
     "current_model": path relative to the folder, "loop": validation set and correction records,
     "notices": [text...] (what happened while the project was closed; absent when none)}
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path

from app.core.loop.loop_record import LoopRecord
from app.core.storage.file_signature import ChangedOnDiskError, signature
from app.core.storage.model_versions import ModelVersion, model_from_json, relative, usable_model
from engine.atomic import atomic_write_bytes
from engine.classes import SegClass, as_classes, default_color

PROJECT_FILE = "segassist.json"
FORMAT = "segassist-project"
FORMAT_VERSION = 1
STATUSES = ("unlabelled", "predicted", "edited", "reviewed")
DEFAULT_CLASSES = ("background", "object")
MAX_CLASSES = 255  # 255 is "not labelled"


class ProjectFileError(ValueError):
    """A `segassist.json` that cannot be used; the message names the file and the problem."""


class ProjectFileWriteError(OSError):
    """`segassist.json` could not be written (the labels saved with it are on disk all the same)."""


@dataclass
class ProjectFields:
    """What a project file holds, checked (the images' records are checked as the folder is scanned)."""

    classes: list[SegClass]
    settings: dict
    images: dict
    models: list[ModelVersion]
    current_model: Path | None
    loop: LoopRecord
    notices: list[str]


def read_project_file(path: Path) -> dict:
    """The JSON object of `path`; `ProjectFileError` naming the file when it is not a usable project file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProjectFileError(f"{path}: not a text file ({exc})") from exc
    except OSError as exc:
        raise ProjectFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProjectFileError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    if not isinstance(doc, dict):
        raise ProjectFileError(f"{path}: expected a JSON object, found {type(doc).__name__}")
    if not valid_text(doc):
        raise ProjectFileError(f"{path}: holds text that is not valid Unicode (a lone surrogate escape)")
    if doc.get("format", FORMAT) != FORMAT:
        raise ProjectFileError(f"{path}: not a SegAssist project file (format {doc.get('format')!r})")
    version = doc.get("version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ProjectFileError(f"{path}: written by a newer SegAssist (version {version!r}); update SegAssist")
    return doc


def parse(folder: Path, path: Path, doc: dict) -> ProjectFields:
    """The fields of a project file's object; `ProjectFileError` naming `path` and the field at fault."""
    try:
        classes = as_classes(_field(doc, "classes", list, "a list of classes") or DEFAULT_CLASSES)
        settings = dict(_field(doc, "settings", dict, "an object") or {})
        images = _field(doc, "images", dict, "an object keyed by file name") or {}
        models = [model_from_json(folder, m) for m in _field(doc, "models", list, "a list") or []]
        current = _field(doc, "current_model", str, "a path")
        current_model = None if current is None else folder / current
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise ProjectFileError(f"{path}: {exc}") from exc
    if len(classes) > MAX_CLASSES:
        raise ProjectFileError(f"{path}: {len(classes)} classes; at most {MAX_CLASSES} are possible")
    try:
        loop = LoopRecord.from_json(doc.get("loop"))
    except ValueError as exc:
        raise ProjectFileError(f"{path}: {exc}") from exc
    notices = doc.get("notices") or []
    if not isinstance(notices, list) or not all(isinstance(n, str) for n in notices):
        raise ProjectFileError(f"{path}: 'notices' must be a list of texts")
    return ProjectFields(classes, settings, images, models, current_model, loop, list(notices))


def image_record(path: Path, images: dict, name: str) -> tuple[str | None, float | None]:
    """The saved (status, mean entropy) of image `name` (None, None when not recorded)."""
    saved = images.get(name) or {}
    if not isinstance(saved, dict):
        raise ProjectFileError(f"{path}: images[{name!r}] must be an object")
    status = saved.get("status")
    if status is not None and status not in STATUSES:
        raise ProjectFileError(f"{path}: images[{name!r}]: unknown status {status!r} "
                               f"(expected one of {', '.join(STATUSES)})")
    entropy = saved.get("mean_entropy")
    if entropy is not None and not (isinstance(entropy, int | float) and math.isfinite(entropy)):
        raise ProjectFileError(f"{path}: images[{name!r}]: mean_entropy must be a number")
    return status, None if entropy is None else float(entropy)


def to_json(folder: Path, classes: list[SegClass], settings: dict, images, models: list[ModelVersion],
            current_model: Path | None, loop: LoopRecord, notices: list[str] = ()) -> dict:
    """The project file's object (`images`: entries with `name`, `status`, `mean_entropy`)."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "classes": [c.to_json() for c in classes],
        "settings": settings,
        "images": {e.name: {"status": e.status, "mean_entropy": e.mean_entropy} for e in images},
        "models": [m.to_json(folder) for m in models],
        "current_model": None if current_model is None else relative(current_model, folder),
        "loop": loop.to_json(),
        **({"notices": list(notices)} if notices else {}),
    }


class ProjectFileWriter:
    """Writes numbered snapshots of the project file atomically, from any thread: a snapshot older than the
    one on disk is dropped, and a file that changed on disk since it was read or written here is not
    overwritten (`ChangedOnDiskError`) unless forced."""

    def __init__(self):
        self._generation = 0  # of the last snapshot taken
        self._written = 0  # of the last snapshot on disk
        self._seen: dict[Path, object] = {}  # file -> its signature when last read or written here
        self._lock = threading.Lock()

    def read(self, path: Path) -> None:
        """Remember `path` as it is now (it was just read, or found missing)."""
        self._seen[path] = signature(path)

    def snapshot(self, doc: dict) -> tuple[int, bytes]:
        """`doc` as the file's bytes, numbered (take it on the thread that changes the project)."""
        self._generation += 1
        text = json.dumps(doc, indent=2, ensure_ascii=False)
        return self._generation, (text + "\n").encode("utf-8")

    def write(self, path: Path, generation: int, data: bytes, *, force: bool = False) -> bool:
        """Write a snapshot to `path`; False when a newer one is on disk already."""
        with self._lock:
            if generation < self._written:
                return False
            if not force and path in self._seen and signature(path) != self._seen[path]:
                raise ChangedOnDiskError(path)
            atomic_write_bytes(path, data)
            self._seen[path] = signature(path)
            self._written = generation
            return True


def valid_text(obj: object) -> bool:
    """Whether `obj` can be written back as UTF-8 JSON (no lone surrogates)."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, TypeError, RecursionError):
        return False
    return True


def salvage(doc: dict) -> dict:
    """What of a broken project file can be kept: each field that is usable on its own."""
    doc = {k: v for k, v in doc.items() if valid_text(v)}
    out: dict = {}
    out["classes"] = _salvage_classes(doc.get("classes"))
    if isinstance(doc.get("settings"), dict):
        out["settings"] = doc["settings"]
    images = doc.get("images")
    if isinstance(images, dict):
        kept = {}
        for name, info in images.items():
            if isinstance(name, str) and isinstance(info, dict):
                status = info.get("status") if info.get("status") in STATUSES else None
                entropy = info.get("mean_entropy")
                ok = isinstance(entropy, int | float) and not isinstance(entropy, bool) and math.isfinite(entropy)
                kept[name] = {"status": status, "mean_entropy": entropy if ok else None}
        out["images"] = kept
    models = doc.get("models")
    if isinstance(models, list):
        out["models"] = [m for m in models if usable_model(m)]
    return {k: v for k, v in out.items() if v is not None}


def _salvage_classes(raw: object) -> list[dict] | None:
    """Every class of a broken list, at its index (label values stay what they were): its name and colour
    where usable, else `class <i>` and the default colour."""
    if not isinstance(raw, list) or not raw:
        return None
    out: list[dict] = []
    names: set[str] = set()
    for i, c in enumerate(raw[:MAX_CLASSES]):
        name = c if isinstance(c, str) else c.get("name") if isinstance(c, dict) else None
        color = c.get("color") if isinstance(c, dict) else None
        try:
            name = as_classes([name])[0].name
        except (TypeError, ValueError):
            name = f"class {i}"
        while name in names:
            name = f"{name} ({i})"
        try:
            color = list(as_classes([{"name": name, "color": color}])[0].color) if color is not None else None
        except (TypeError, ValueError):
            color = None
        color = color or list(default_color(i))
        names.add(name)
        out.append({"name": name, "color": color})
    return out


def _field(doc: dict, key: str, kind: type, what: str):
    """`doc[key]` when present and of type `kind`, None when absent or null."""
    value = doc.get(key)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"{key!r} must be {what}, found {type(value).__name__}")
    return value
