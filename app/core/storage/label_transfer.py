"""Labels in and out of a project through `labelformats`: import (journaled, undoable) and export.

An import is planned first (`plan_import`): the class mapping, which image each label file belongs to,
and every file read and checked, so that bad input stops it before anything is written. `run_import`
then writes image by image: the new labels are one stroke on the image's document (the recovery
journal has it before the label file is written, so a crash mid-import loses nothing), and the
stroke's inverse is kept under `.segassist/imports/<id>/`, which `undo_import` replays to take the
whole import back. Imported predictions (`as_proposals`) only replace the cached proposals.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from app.core.loop.validation_split import pick_validation
from app.core.storage.journal import decode, encode
from app.core.storage.predictions import PredictionFileError, read_prediction
from app.core.storage.project import ImageEntry, Project
from engine.atomic import atomic_write_bytes
from engine.images import read_label
from labelformats import IGNORE_INDEX, ClassMapping, ExportItem, FormatError, Item, LabelSource, export, plan_mapping
from labelformats.base import IMAGE_SUFFIXES, UNLABELLED, present_ids, strip_suffix

EXPORT_SETS = {"reviewed": "reviewed images only", "labelled": "every labelled image (edited or reviewed)",
               "all": "every image with labels or a proposal (an image without labels gives its proposal)"}
IMPORTS_DIR = "imports"
_MAGIC = b"SAIMP1\n"

Progress = Callable[[int, int, str], None] | None
ShouldStop = Callable[[], bool] | None


class TransferCancelled(Exception):
    """The import stopped at a cancel; the images done so far stay imported (and undoable)."""


@dataclass
class ImportPlan:
    source: LabelSource
    mapping: ClassMapping
    matches: list[tuple[Item, ImageEntry]]
    unmatched: list[Item]
    as_proposals: bool = False
    keep_existing: bool = False  # only fill pixels not labelled yet


@dataclass
class ImportResult:
    images: int  # images whose labels (or proposals) were written
    record: Path | None  # what `undo_import` takes
    added_classes: list[str] = field(default_factory=list)
    cancelled: bool = False
    empty: list[str] = field(default_factory=list)  # images the source has no labels for: left as they were
    unchanged: list[str] = field(default_factory=list)  # images that had these labels already

    def summary(self, what: str = "labels") -> str:
        """What the import did, in words: written, and left as they were (and why)."""
        text = f"imported the {what} of {self.images} image{'s' if self.images != 1 else ''}"
        for names, why in ((self.empty, "no labels in the source"), (self.unchanged, "these labels already")):
            if names:
                listed = ", ".join(names[:3]) + (" …" if len(names) > 3 else "")
                text += (f"; {len(names)} image{'s' if len(names) != 1 else ''} had {why}, left as "
                         f"{'they were' if len(names) != 1 else 'it was'} ({listed})")
        if self.added_classes:
            text += f"; added classes {', '.join(self.added_classes)}"
        return text


def _match(project: Project, items: list[Item]) -> tuple[list[tuple[Item, ImageEntry]], list[Item]]:
    by_stem: dict[str, ImageEntry] = {}
    for e in project.images:
        if e.error is None:
            by_stem.setdefault(e.stem, e)
            by_stem.setdefault(strip_suffix(e.stem, IMAGE_SUFFIXES), e)
    matches, unmatched = [], []
    owner: dict[str, Item] = {}
    for item in items:
        entry = by_stem.get(item.key) or by_stem.get(strip_suffix(item.key))
        if entry is None:
            unmatched.append(item)
            continue
        first = owner.setdefault(entry.name, item)
        if first is not item:
            a, b = _describe(first), _describe(item)
            raise FormatError(f"{a} and {b} both hold labels for the image {entry.name}; remove or rename one "
                              "of them (an image takes the labels of one file)")
        matches.append((item, entry))
    return matches, unmatched


def _describe(item: Item) -> str:
    return f"{item.path} (image {item.index})" if item.index else str(item.path)


def plan_import(project: Project, source: LabelSource, *, overrides: dict[str, str | None] | None = None,
                unknown: str = "error", as_proposals: bool = False, keep_existing: bool = False,
                check: bool = True, progress: Progress = None, should_stop: ShouldStop = None) -> ImportPlan:
    """Map the source's classes, pair its items with the project's images, and (with `check`) read every
    item once: a file that is not the format, of the wrong size, or with a class outside the mapping
    raises `FormatError` naming it, and nothing has been written."""
    where = str(getattr(source, "folder", None) or getattr(source, "path", "the source"))
    matches, unmatched = _match(project, source.items())
    if not matches:
        raise FormatError(f"{where}: none of its {len(unmatched)} label files belongs to an image of the project "
                          f"(names such as {', '.join(i.key for i in unmatched[:3])})")
    if not check:
        classes, seen_in = source.classes(), {}
    else:
        seen_in: dict[int, Path] = {}
        for n, (item, entry) in enumerate(matches):
            if should_stop is not None and should_stop():
                raise TransferCancelled("checking")
            for v in present_ids(source.read(item, entry.size)):
                if v != UNLABELLED:
                    seen_in.setdefault(v, item.path)
            if progress is not None:
                progress(n + 1, len(matches), f"checked {item.path.name}")
        classes = source.classes_for(seen_in)
        unnamed = sorted(set(seen_in) - {c.id for c in classes})
        if unnamed:
            raise FormatError(f"{seen_in[unnamed[0]]}: value {unnamed[0]} is not a class of the source")
    mapping = plan_mapping(classes, project.classes, overrides=overrides, unknown=unknown, where=where,
                           seen_in=seen_in)
    return ImportPlan(source, mapping, matches, unmatched, as_proposals, keep_existing)


def run_import(project: Project, plan: ImportPlan, *, progress: Progress = None,
               should_stop: ShouldStop = None) -> ImportResult:
    """Write the planned import into the project (see the module docstring). A cancel stops between
    images; `ImportResult.cancelled` says so and the record undoes what was done. A project open
    read-only raises OSError (EROFS, with why) before anything is written."""
    project.check_writable()
    added = []
    for cls in plan.mapping.added:
        if all(c.name != cls.name for c in project.classes):
            project.add_class(cls.name, cls.color)
            added.append(cls.name)
    record = None
    if not plan.as_proposals:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        record = project.folder / ".segassist" / IMPORTS_DIR / stamp
        record.mkdir(parents=True)
    done, cancelled, empty, unchanged = 0, False, [], []
    model = f"imported ({plan.source.format})"
    try:
        for item, entry in plan.matches:
            if should_stop is not None and should_stop():
                cancelled = True
                break
            labels = plan.mapping.apply(plan.source.read(item, entry.size), item.path)
            if not (labels != IGNORE_INDEX).any():
                empty.append(entry.name)  # nothing to import: never an all-unlabelled proposal or stroke
            elif plan.as_proposals:
                entry.mean_entropy = project.write_prediction(entry, labels, model=model)
                if entry.status == "unlabelled":
                    entry.status = "predicted"  # segassist.json is written once, at the end
                done += 1
            elif _import_one(project, entry, labels, plan.keep_existing, record):
                done += 1
            else:
                unchanged.append(entry.name)
            if progress is not None:
                progress(done + len(empty) + len(unchanged), len(plan.matches), entry.name)
    finally:
        project.save()
    return ImportResult(done, record, added, cancelled, empty, unchanged)


def _import_one(project: Project, entry: ImageEntry, labels: np.ndarray, keep_existing: bool, record: Path) -> bool:
    """Import one image's labels; True when they changed it."""
    doc = project.load_document(entry)  # journal attached: the stroke below is on disk before the label file
    undo = record / f"{entry.stem}.undo"
    if undo.exists():
        raise FormatError(f"{undo}: this import already changed {entry.name}; an image takes the labels of one file")

    def keep_undo(stroke, _revision) -> None:
        atomic_write_bytes(undo, _MAGIC + encode(stroke.inverse(), 0, doc.shape))

    project.saving.precede(doc, keep_undo)  # the undo record is written before the journal's
    try:
        mask = doc.labels != labels
        if keep_existing:
            mask &= doc.labels == 255
        changed = doc.paint((0, 0), mask, labels) is not None
        if doc.dirty:
            pending = project.begin_save(entry, doc, copy=False)
            pending.write()
            pending.doc.mark_saved(pending.state)
            project.journal.clear(entry.stem, upto=pending.revision)
            if entry.status in ("unlabelled", "predicted"):
                entry.status = "edited"
    finally:
        doc.stroke_listeners.clear()
    return changed


def undo_import(project: Project, record: str | Path, progress: Progress = None) -> int:
    """Write back the labels an import replaced (every image of it, each as one journaled stroke)."""
    record = Path(record)
    if not record.is_dir():
        raise FormatError(f"{record}: no such import record (a folder under .segassist/{IMPORTS_DIR}/)")
    for tmp in record.glob(".*.tmp"):  # an undo record whose write was interrupted: its image was not changed
        tmp.unlink(missing_ok=True)
    files = sorted(record.glob("*.undo"))
    for n, path in enumerate(files):
        data = path.read_bytes()
        if not data.startswith(_MAGIC):
            raise FormatError(f"{path}: not an import undo record")
        _, stroke, _ = decode(path, data[len(_MAGIC) + 12:])
        entry = project.entry(path.stem)
        doc = project.load_document(entry)
        try:
            doc.replay(stroke)
            if doc.dirty:  # an import stopped before this image's labels changed leaves nothing to take back
                project.save_document(entry, doc)
        finally:
            doc.stroke_listeners.clear()
        path.unlink()
        if progress is not None:
            progress(n + 1, len(files), entry.name)
    record.rmdir()
    return len(files)


# ---- export ------------------------------------------------------------------------------------------

def export_entries(project: Project, which: str = "labelled") -> list[ImageEntry]:
    """The images an export of `which` (see `EXPORT_SETS`) holds."""
    if which not in EXPORT_SETS:
        raise ValueError(f"which must be one of {', '.join(EXPORT_SETS)}, not {which!r}")
    usable = [e for e in project.images if e.error is None]
    if which == "reviewed":
        return [e for e in usable if e.status == "reviewed" and project.label_path(e).exists()]
    labelled = [e for e in usable if project.label_path(e).exists()]
    if which == "labelled":
        return labelled
    return [e for e in usable if e in labelled or project.prediction_path(e).exists()]


def export_items(project: Project, which: str = "labelled", *, val_fraction: float = 0.0) -> Iterator[ExportItem]:
    """The images to export, each reading its labels (or, for `all`, its proposal) only when written.

    With `val_fraction`, that share of them (chosen by a hash of the file name, as the validation set
    is) goes into the `val` split, the rest into `train`."""
    entries = export_entries(project, which)
    val = set(pick_validation([e.name for e in entries], fraction=val_fraction, minimum=1)) if val_fraction else set()
    n = len(project.classes)
    for e in entries:
        yield ExportItem(e.stem, e.path, split="val" if e.name in val else "train",
                         loader=lambda e=e: _labels_of(project, e, n))


def _labels_of(project: Project, entry: ImageEntry, num_classes: int) -> np.ndarray:
    path = project.label_path(entry)
    if path.exists():
        return read_label(path, num_classes)
    try:
        return read_prediction(project.prediction_path(entry)).labels
    except PredictionFileError as exc:
        raise FormatError(str(exc)) from exc


def export_project(project: Project, fmt: str, out: str | Path, *, which: str = "labelled", val_fraction: float = 0.0,
                   polygons: bool = False, tolerance: float = 1.0, progress: Progress = None,
                   should_stop: ShouldStop = None) -> int:
    """Export the project's labels in `fmt` into `out`; returns the number of images written.

    `out` must lie outside the project folder (`FormatError` otherwise): an export never writes over the
    person's images, labels or SegAssist's files, and a failed one leaves `out` as it was."""
    check_export_folder(project, out)
    items = list(export_items(project, which, val_fraction=val_fraction))
    if not items:
        raise FormatError(f"{project.folder}: no images to export ({EXPORT_SETS[which]})")

    def step(done: int) -> None:
        if should_stop is not None and should_stop():
            raise TransferCancelled("export")
        if progress is not None:
            progress(done, len(items), "")

    return export(fmt, items, list(project.classes), out, polygons=polygons, tolerance=tolerance, progress=step,
                  protect=[e.path for e in project.images])


def check_export_folder(project: Project, out: str | Path) -> None:
    """Refuse an export folder inside the project (its images, labels/, models/, .segassist/)."""
    target = Path(os.path.realpath(Path(out).expanduser()))
    for folder in {project.folder, project.write_folder} - {None}:
        real = Path(os.path.realpath(folder))
        if target == real or real in target.parents:
            raise FormatError(f"{out}: inside the project folder {folder}; an export goes to a folder outside the "
                              "project, so that it never writes over the images or the labels")
