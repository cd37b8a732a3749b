"""`segassist-convert`: labels of other tools into a project, and a project's labels out as a data set."""

from __future__ import annotations

import argparse
import contextlib
import errno
import sys
import time
from pathlib import Path

from app.core.storage.label_transfer import EXPORT_SETS, export_project, plan_import, run_import, undo_import
from app.core.storage.project import ChangedOnDiskError, Project, ProjectFileError
from app.core.storage.project_lock import ProjectLockedError
from labelformats import EXPORT_FORMATS, IMPORT_FORMATS, UNKNOWN_POLICIES, FormatError, open_source


def _formats(table: dict[str, str]) -> str:
    return "\n".join(f"  {name:<14} {text}" for name, text in table.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segassist-convert", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Bring labels (or another tool's predictions) into a SegAssist project, or take a project's "
                    "labels out in another tool's format.",
        epilog=f"import formats:\n{_formats(IMPORT_FORMATS)}\n\nexport formats:\n{_formats(EXPORT_FORMATS)}\n\n"
               "index, palette, rgb, coco (RLE), labelme (masks), voc and cityscapes hold the labels exactly;\n"
               "polygons (coco/labelme --polygons, yolo) keep each region's outer boundary within --tolerance px.")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="read label files into the project's labels (or proposals)")
    imp.add_argument("project", type=Path, help="the project folder (its images)")
    imp.add_argument("format", choices=list(IMPORT_FORMATS))
    imp.add_argument("source", type=Path, help="the label folder, or the JSON file for coco formats")
    imp.add_argument("--classes", type=Path, dest="classes_file",
                     help="class map: classes.json, segassist.json, or one name per line (value = line)")
    imp.add_argument("--map", action="append", default=[], metavar="SOURCE=TARGET",
                     help="map a source class (by name or value) to a project class or a new name; "
                          "SOURCE= (empty) drops it to 255. Repeatable")
    imp.add_argument("--unknown", choices=UNKNOWN_POLICIES, default="error",
                     help="classes the project lacks: stop (default), add them, or drop them to 255")
    imp.add_argument("--ignore-value", type=int, default=255, help="mask value for not labelled (default 255)")
    imp.add_argument("--masks", type=Path, help="coco-panoptic: the PNG folder (default: beside the JSON)")
    imp.add_argument("--as-proposals", action="store_true",
                     help="predictions of another tool: store them as proposals to correct, never as labels")
    imp.add_argument("--keep-existing", action="store_true", help="only fill pixels not labelled yet")
    imp.add_argument("--dry-run", action="store_true", help="check everything and show the mapping; write nothing")
    und = sub.add_parser("undo", help="take back an import (its record folder is printed by import)")
    und.add_argument("project", type=Path)
    und.add_argument("record", type=Path)
    exp = sub.add_parser("export", help="write the project's labels in a format")
    exp.add_argument("project", type=Path)
    exp.add_argument("format", choices=list(EXPORT_FORMATS))
    exp.add_argument("out", type=Path, help="the folder to write into")
    exp.add_argument("--images", choices=list(EXPORT_SETS), default="labelled",
                     help="; ".join(f"{k}: {v}" for k, v in EXPORT_SETS.items()) + " (default labelled)")
    exp.add_argument("--val-fraction", type=float, default=0.0,
                     help="share of the images in a val split (chosen by file-name hash); default none")
    exp.add_argument("--polygons", action="store_true", help="coco and labelme: polygons instead of exact masks")
    exp.add_argument("--tolerance", type=float, default=1.0, help="polygon simplification in pixels (default 1)")
    for command in (imp, und, exp):
        command.add_argument("--take-over-lock", action="store_true",
                             help="take the project's lock over from a window that is gone (on another host, or "
                                  "a process id reused since); the holder is named when the lock refuses")
    return parser


def _overrides(pairs: list[str]) -> dict[str, str | None]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"segassist-convert: --map needs SOURCE=TARGET, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip() or None
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for stream in (sys.stdout, sys.stderr):  # a class name with a lone surrogate is printed, never a traceback
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    project = None
    try:
        project = _open(args)
        if args.command == "import":
            return _import(project, args)
        if args.command == "undo":
            n = undo_import(project, args.record)
            print(f"undid the import of {n} images")
            return 0
        start = time.perf_counter()
        n = export_project(project, args.format, args.out, which=args.images, val_fraction=args.val_fraction,
                           polygons=args.polygons, tolerance=args.tolerance)
        print(f"exported {n} images as {args.format} into {args.out} ({time.perf_counter() - start:.1f} s)")
        return 0
    except (FormatError, ProjectFileError, ProjectLockedError, OSError, ValueError, KeyError, RecursionError,
            MemoryError) as exc:
        print(f"segassist-convert: {_one_line(exc)}", file=sys.stderr)
        return 2
    finally:
        if project is not None:
            project.close()


def _open(args) -> Project:
    if not args.project.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(args.project))
    try:
        return Project.open(args.project)
    except ProjectLockedError as exc:
        if not args.take_over_lock:
            raise
        return Project.open(args.project, take_over=exc.info)


def _one_line(exc: BaseException) -> str:
    """The error as one line that names the file (an OSError's own message may not)."""
    if isinstance(exc, ProjectLockedError):
        return f"{exc} Or pass --take-over-lock when that window is gone."
    if isinstance(exc, RecursionError):
        return "a file is nested too deeply to be read"
    if isinstance(exc, MemoryError):
        return "not enough memory for this data"
    if isinstance(exc, OSError) and not isinstance(exc, ChangedOnDiskError):
        name = exc.filename or "a file"
        return f"{name}: {exc.strerror or exc}"
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return " ".join(str(exc).split()) or type(exc).__name__


def _import(project: Project, args) -> int:
    source = open_source(args.format, args.source, classes_file=args.classes_file,
                         project_classes=list(project.classes), ignore=args.ignore_value, masks=args.masks)
    plan = plan_import(project, source, overrides=_overrides(args.map), unknown=args.unknown,
                       as_proposals=args.as_proposals, keep_existing=args.keep_existing)
    for src, target in plan.mapping.rows():
        print(f"  {src:<28} -> {target}")
    for note in source.notes():
        print(note)
    if plan.unmatched:
        print(f"{len(plan.unmatched)} label files have no image in the project (skipped): "
              + ", ".join(i.key for i in plan.unmatched[:5]))
    if args.dry_run:
        print(f"checked {len(plan.matches)} label files; nothing written (--dry-run)")
        return 0
    result = run_import(project, plan)
    what = "proposals" if args.as_proposals else "labels"
    print(result.summary(what)
          + (f"; undo with: segassist-convert undo {project.folder} {result.record}" if result.record else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
