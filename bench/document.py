"""Timings of the Qt-free document and tools: brush per mouse move, flood fill, accept, undo, save.

    python -m bench.document            # 4096 and 10000 square images
    python -m bench.document --quick    # a smoke run on 1024 only
    python -m bench.document --sizes 2048 --moves 100

Prints a table of medians and p95 in milliseconds (the frame budget is 16 ms).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from app.core.editing import tools
from app.core.editing.document import LabelDocument
from app.core.storage.journal import Journal
from bench.timing import table
from engine.images import write_label


def _timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def brush_moves(doc: LabelDocument, radius: float, moves: int, seed: int = 0) -> list[float]:
    """Per-move milliseconds of brush_segment + apply along a random walk, in one stroke."""
    rng = np.random.default_rng(seed)
    h, w = doc.shape
    p = np.array([h / 2, w / 2])
    times = []
    doc.begin_stroke()
    for i in range(moves):
        q = np.clip(p + rng.normal(0, 6, 2), 0, [h - 1, w - 1])
        t = time.perf_counter()
        crop = tools.brush_segment(doc.shape, tuple(p), tuple(q), radius)
        if crop is not None:
            doc.apply(*crop, i % 4)
        times.append((time.perf_counter() - t) * 1000)
        p = q
    doc.end_stroke()
    return times


def brush_stroke_ms(doc: LabelDocument, radius: float, moves: int) -> float:
    """Milliseconds `end_stroke` takes (the journal's durable append) after a brush stroke."""
    doc.begin_stroke()
    for i in range(moves):
        y = doc.shape[0] / 3 + i
        doc.apply(*tools.brush_segment(doc.shape, (y, 100.5), (y + 1, 110.5), radius), 1 + (i % 2))
    t = time.perf_counter()
    doc.end_stroke()
    return (time.perf_counter() - t) * 1000


def run(sizes: list[int], radius: float, moves: int) -> list[tuple[str, int, float, float]]:
    rows = []
    for size in sizes:
        image = np.zeros((size, size, 3), np.uint8)
        doc = LabelDocument(image)
        for r in (radius, radius * 4):
            t = brush_moves(doc, r, moves)
            rows.append((f"brush r={r:g} per move", size, float(np.median(t)), float(np.percentile(t, 95))))
        rows.append((f"history after {2 * moves} moves (KiB)", size, doc.history_nbytes() / 1024, 0.0))
        t = _timed(doc.undo, 1) + _timed(doc.redo, 1)
        rows.append(("undo + redo of a stroke", size, float(np.median(t)), float(max(t))))
        doc.labels[:, size // 2] = 1  # a wall: filling the left half
        t = _timed(lambda d=doc: tools.flood_fill(d.labels, (10, 10)), 3)
        rows.append(("flood fill half the image (mask)", size, float(np.median(t)), float(max(t))))

        def fill_and_undo(d=doc):
            d.paint(*tools.flood_fill(d.labels, (10, 10)), 2)
            d.undo()
        t = _timed(fill_and_undo, 2)
        rows.append(("fill half the image: paint + undo", size, float(np.median(t)), float(max(t))))
        doc.labels[10:210, -210:-10] = 3  # a 200 x 200 object
        t = _timed(lambda d=doc: tools.flood_fill(d.labels, (100, d.shape[1] - 100)), 3)
        rows.append(("flood fill 200x200 region (mask)", size, float(np.median(t)), float(max(t))))
        blocks = np.random.default_rng(0).integers(0, 4, (40, 40), dtype=np.uint8)  # regions, as a model gives
        proposal = cv2.resize(blocks, (size, size), interpolation=cv2.INTER_NEAREST)

        def accept(d=doc, p=proposal):
            d.paint(*tools.accept_proposal(p, d.labels))
            d.undo()
        t = _timed(accept, 2)
        rows.append(("accept whole proposal + undo", size, float(np.median(t)), float(max(t))))
        with tempfile.TemporaryDirectory() as tmp:
            t = _timed(lambda d=doc: write_label(Path(tmp) / "l.png", d.labels), 2)
            rows.append(("write label PNG", size, float(np.median(t)), float(max(t))))
            journal = Journal(tmp)
            journal.attach("x", doc)
            t = [brush_stroke_ms(doc, radius, 60) for _ in range(5)]
            rows.append(("journal: 60-move brush stroke, end_stroke", size, float(np.median(t)), float(max(t))))
            t = _timed(accept, 1)
            rows.append(("journal: accept whole proposal + undo", size, float(np.median(t)), float(max(t))))
        del doc, image, proposal
    return rows


def main(argv: list[str] | None = None) -> list[tuple[str, int, float, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run on a 1024 image")
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 10000], help="image sides")
    parser.add_argument("--radius", type=float, default=8)
    parser.add_argument("--moves", type=int, default=300)
    args = parser.parse_args(argv)
    sizes, moves = ([1024], 50) if args.quick else (args.sizes, args.moves)
    rows = run(sizes, args.radius, moves)
    print(table(["operation", "size", "median ms", "p95/max ms"], [list(r) for r in rows]))
    return rows


if __name__ == "__main__":
    main()
