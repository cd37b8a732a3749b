"""Import and export of a project's labels in other tools' formats: time and peak memory.

    python -m bench.formats                                  # a short run: 20 images, palette and coco
    python -m bench.formats --images 1000 --formats palette,coco,labelme    # the full row (minutes)
    python -m bench.formats --round-trips                    # what other tools' readers see (bench.format_round_trips)

A generated project of IMAGES images of WxH (JPEG, label maps of a dozen regions with holes) is
exported in each format, then imported into a fresh project (checked pass, then the journaled write;
YOLO is export only).
Each phase runs in its own forked process, so its peak memory (max RSS) is its own.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path
from queue import Empty

import cv2
import numpy as np

from app.core.storage.label_transfer import export_project, plan_import, run_import
from app.core.storage.project import Project
from engine.images import write_image, write_label
from labelformats import EXPORT_FORMATS, IMPORT_FORMATS, open_source

CLASSES = ["background", "road", "car", "person", "sky", "tree", "sign", "pole"]


def make_labels(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    labels = np.zeros((h, w), np.uint8)
    labels[h // 2:] = 1
    for _ in range(12):
        y, x = rng.integers(0, h), rng.integers(0, w)
        dy, dx = rng.integers(h // 20 + 1, h // 3 + 2), rng.integers(w // 20 + 1, w // 3 + 2)
        c = int(rng.integers(0, len(CLASSES)))
        cv2.ellipse(labels, (int(x), int(y)), (int(dx) // 2, int(dy) // 2), 0, 0, 360, c, -1)
    labels[h // 3: h // 3 + h // 25, w // 3: w // 3 + w // 17] = 255  # a hole
    return labels


def make_project(folder: Path, n: int, h: int, w: int, labelled: bool) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 255, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8), (w, h))
    project = Project.open(folder, CLASSES)
    for i in range(n):
        write_image(folder / f"frame_{i:05d}.jpg", np.roll(base, i * 7, axis=1))
        if labelled:
            write_label(folder / "labels" / f"frame_{i:05d}.png", make_labels(rng, h, w), project.classes)
    project.close()  # the phases open it in child processes


def _source(fmt: str, out: Path):
    if fmt == "coco":
        return open_source("coco", out / "annotations" / "instances_train.json")
    if fmt == "labelme":
        return open_source("labelme", out)
    return open_source(fmt, out, classes_file=out / "classes.json")


def _phase(queue, what: str, root: str, fmt: str) -> None:
    try:
        root_path = Path(root)
        start = time.perf_counter()
        project = Project.open(root_path / ("src" if what == "export" else f"dst-{fmt}"))
        try:
            if what == "export":
                n = export_project(project, fmt, root_path / fmt)
            else:
                n = run_import(project, plan_import(project, _source(fmt, root_path / fmt))).images
        finally:
            project.close()
        seconds = time.perf_counter() - start
        queue.put((n, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    except BaseException as exc:  # the parent reports it instead of waiting for ever
        queue.put(exc)
        raise


def run_phase(what: str, root: Path, fmt: str) -> tuple[int, float, float]:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_phase, args=(queue, what, str(root), fmt))
    proc.start()
    try:
        result = queue.get(timeout=600)
    except Empty:
        raise RuntimeError(f"the {what} phase of {fmt} ended without a result (exit code {proc.exitcode})") from None
    finally:
        proc.join(timeout=60)
    if isinstance(result, BaseException):
        raise RuntimeError(f"the {what} phase of {fmt} failed: {result}") from result
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=None, help="default 20 (10 with --round-trips)")
    parser.add_argument("--size", default=None, help="WxH (default 1024x768, 320x240 with --round-trips)")
    parser.add_argument("--formats", default="palette,coco", help=f"comma list of {', '.join(EXPORT_FORMATS)}")
    parser.add_argument("--round-trips", action="store_true",
                        help="the round-trip table through other tools' readers and writers instead of timings")
    args = parser.parse_args(argv)
    args.images = args.images or (10 if args.round_trips else 20)
    w, h = (int(v) for v in (args.size or ("320x240" if args.round_trips else "1024x768")).lower().split("x"))
    if args.round_trips:
        from bench.format_round_trips import print_table, round_trips

        with tempfile.TemporaryDirectory() as tmp:
            print(f"{args.images} images of {w}x{h}; polygons with tolerance 1 px")
            print_table(round_trips(Path(tmp), make_project, args.images, h, w, CLASSES))
        return
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        make_project(root / "src", args.images, h, w, labelled=True)
        for fmt in formats:
            make_project(root / f"dst-{fmt}", args.images, h, w, labelled=False)
        print(f"{args.images} images of {w}x{h}, generated in {time.perf_counter() - t:.1f} s")
        print(f"{'format':<10} {'phase':<7} {'images':>6} {'seconds':>8} {'ms/image':>9} {'peak RSS MiB':>13}")
        for fmt in formats:
            for what in ("export", "import") if fmt in IMPORT_FORMATS else ("export",):  # yolo: export only
                n, seconds, rss = run_phase(what, root, fmt)
                print(f"{fmt:<10} {what:<7} {n:>6} {seconds:>8.1f} {1000 * seconds / max(n, 1):>9.1f} {rss:>13.0f}",
                      flush=True)


if __name__ == "__main__":
    main()
