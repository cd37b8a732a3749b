"""The canvas under load: brush latency per mouse move, image switch time, memory over 20 images.

    python -m bench.ui               # brush on 4096 and 10000 square images; switching 20 images of 4096 x 3072
    python -m bench.ui --quick       # a smoke run: 1024 and 2048, 20 images of 640 x 480
    python -m bench.ui --sizes 4096 --moves 300 --switch-size 2048x1536

Brush latency is measured through the real canvas (offscreen): a mouse-move event is sent to the
viewport, the brush tool writes the segment into the document, the document reports the changed
region, the overlay tiles under it are dropped, and the view repaints that region; the time runs until
the paint has happened. Image switch: the editor saves nothing (no edits), loads the next image of a
project folder (decode, labels, cached proposal), and the canvas paints it fitted. Memory is the
process's resident set after each switch. Prints tables of medians and p95 in milliseconds (a frame
at 60 Hz is 16.7 ms).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtCore import QEvent, QObject, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.canvas.interaction import BrushTool  # noqa: E402
from app.canvas.view import Canvas  # noqa: E402
from app.core.editing.document import LabelDocument  # noqa: E402
from bench.timing import table  # noqa: E402
from engine import SegClass, default_color, write_image  # noqa: E402

CLASSES = [SegClass(f"class{i}", default_color(i)) for i in range(8)]
VIEW = (1600, 1000)


class _PaintCounter(QObject):
    def __init__(self):
        super().__init__()
        self.paints = 0

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.paints += 1
        return False


class _Editor:
    """What the brush needs from the editor."""

    def __init__(self, canvas, doc, radius):
        self.canvas, self.doc, self.current_class, self.brush_radius = canvas, doc, 1, radius

    def say(self, text):
        pass


def rss_mib() -> float:
    """Resident set size of this process in MiB (from /proc)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful image (cheap to make at 10000 x 10000)."""
    rng = np.random.default_rng(seed)
    ys = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    xs = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    img = np.empty((h, w, 3), np.uint8)
    for c in range(3):
        fy, fx, ph = rng.uniform(2, 9), rng.uniform(2, 9), rng.uniform(0, 6)
        img[..., c] = (127 + 120 * np.sin(fy * 6.28 * ys + ph) * np.cos(fx * 6.28 * xs)).astype(np.uint8)
    return img


def _settle(app: QApplication, counter: _PaintCounter, before: int) -> None:
    """Process events until the viewport has painted again (the repaint of the changed region)."""
    for _ in range(20):
        app.processEvents()
        if counter.paints > before:
            return


def brush_latency(size: int, moves: int, radius: int, zoom: float) -> tuple[list[float], int]:
    """Milliseconds per mouse move (event -> apply -> overlay update -> repaint) on a size x size image."""
    app = QApplication.instance()
    canvas = Canvas()
    canvas.resize(*VIEW)
    canvas.show()
    doc = LabelDocument(synthetic_image(size, size))
    doc.set_proposal(np.zeros((size, size), np.uint8))
    canvas.set_document(doc, CLASSES)
    canvas.set_zoom(zoom)
    canvas.centerOn(size / 2, size / 2)
    canvas.set_tool(BrushTool(_Editor(canvas, doc, radius)))
    counter = _PaintCounter()
    vp = canvas.viewport()
    vp.installEventFilter(counter)
    canvas.viewport().repaint()
    app.processEvents()

    rng = np.random.default_rng(0)
    centre = np.array([VIEW[0] / 2, VIEW[1] / 2])
    pos = centre.copy()

    def send(kind, p):
        pt = QPointF(float(p[0]), float(p[1]))
        buttons = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseButtonRelease else Qt.MouseButton.NoButton
        ev = QMouseEvent(kind, pt, vp.mapToGlobal(pt), Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove
                         else Qt.MouseButton.NoButton, buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(vp, ev)

    send(QEvent.Type.MouseButtonPress, pos)
    _settle(app, counter, counter.paints)
    times = []
    for _ in range(moves):
        pos = np.clip(pos + rng.normal(0, 8, 2), centre - 300, centre + 300)  # mouse moves of a few pixels
        before = counter.paints
        t = time.perf_counter()
        send(QEvent.Type.MouseMove, pos)
        _settle(app, counter, before)
        times.append((time.perf_counter() - t) * 1000)
    send(QEvent.Type.MouseButtonRelease, pos)
    app.processEvents()
    painted = int((doc.labels != 255).sum())
    canvas.set_document(None, [])
    canvas.tool.editor.doc = None  # Qt wrappers take no part in cycle collection: let go by hand
    canvas.set_tool(None)
    canvas.close()
    canvas.deleteLater()
    app.processEvents()
    gc.collect()
    return times, painted


def switch_images(folder: Path, count: int) -> tuple[list[float], list[float]]:
    """Milliseconds per image switch through the editor and canvas, and RSS (MiB) after each."""
    from app.core.storage.project import Project
    from app.services.editor import Editor

    app = QApplication.instance()
    canvas = Canvas()
    canvas.resize(*VIEW)
    canvas.show()
    counter = _PaintCounter()
    canvas.viewport().installEventFilter(counter)
    editor = Editor(canvas)
    editor.set_project(Project.open(folder))
    times, rss = [], []
    for i in range(count):
        before = counter.paints
        t = time.perf_counter()
        editor.open_image(i % len(editor.project.images))
        while editor.doc is None and editor.loading is not None:  # large images load in the background
            app.processEvents()
            time.sleep(0.001)
        _settle(app, counter, before)
        times.append((time.perf_counter() - t) * 1000)
        rss.append(rss_mib())
    editor.close_image()
    canvas.close()
    return times, rss


def make_folder(folder: Path, n: int, h: int, w: int) -> Path:
    for i in range(n):
        write_image(folder / f"img{i:02d}.jpg", synthetic_image(h, w, seed=i))
    return folder


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[4096, 10000], help="square image sides for the brush")
    p.add_argument("--moves", type=int, default=200, help="mouse moves per brush run")
    p.add_argument("--radius", type=int, default=20, help="brush radius in image pixels")
    p.add_argument("--switch-size", default="4096x3072", help="image size (WxH) for switching")
    p.add_argument("--images", type=int, default=20, help="images opened in turn")
    p.add_argument("--quick", action="store_true", help="smoke run: small images, few moves")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.moves, args.switch_size = [1024, 2048], 30, "640x480"
    app = QApplication.instance() or QApplication([])
    app.setStyle("Fusion")

    rows = []
    for size in args.sizes:
        for zoom, label in ((1.0, "100%"), (None, "fit")):
            z = zoom if zoom is not None else min(VIEW[0] / size, VIEW[1] / size)
            times, painted = brush_latency(size, args.moves, args.radius, z)
            rows.append([f"{size} x {size}", label, args.radius, len(times), statistics.median(times), p95(times),
                         max(times)])
    print(f"Brush latency per mouse move (event -> document -> overlay -> repaint), {VIEW[0]}x{VIEW[1]} view, ms")
    print(table(["image", "zoom", "radius", "moves", "median", "p95", "max"], rows))
    print()

    w, h = (int(v) for v in args.switch_size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="segassist-bench-ui-") as tmp:
        folder = make_folder(Path(tmp), args.images, h, w)
        start_rss = rss_mib()
        times, rss = switch_images(folder, args.images)
    print(f"Image switch ({args.images} JPEG images of {w} x {h}, opened in turn; decode + document + first paint)")
    print(table(["switches", "median ms", "p95 ms", "first ms", "RSS before MiB", "RSS after 1 MiB",
                 f"RSS after {args.images} MiB", "RSS max MiB"],
                [[len(times), statistics.median(times), p95(times), times[0], start_rss, rss[0], rss[-1], max(rss)]]))


if __name__ == "__main__":
    main()
