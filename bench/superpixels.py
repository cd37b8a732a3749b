"""Superpixels and label clean-up on a large image: precompute per scale, one click, a view's boundaries.

The image is a CamVid photo scaled up to the asked size when the data is there, else a synthetic
scene; the labels for the clean-up rows are its superpixels' majority of a noisy split.

    python -m bench.superpixels [--size 4096] [--max-pixels 1000000] [--method slic]
"""

from __future__ import annotations

import argparse
import glob
import time

import cv2
import numpy as np

from app.core.editing.document import LabelDocument
from app.core.smart import cleanup
from app.core.smart.superpixels import DEFAULT_SEGMENTS, SuperpixelPainter, compute_levels, working_size
from bench.timing import median_seconds, table

CAMVID = "/work/shared/data/camvid-mini/*/images/*.png"


def test_image(size: int) -> tuple[np.ndarray, str]:
    files = sorted(glob.glob(CAMVID))
    if files:
        image = cv2.imread(files[0], cv2.IMREAD_COLOR)[:, :, ::-1]
        return np.ascontiguousarray(cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC)), files[0]
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (size // 64, size // 64, 3), dtype=np.uint8)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_NEAREST), "synthetic blocks"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--max-pixels", type=int, default=1_000_000)
    ap.add_argument("--method", default="slic", choices=("slic", "felzenszwalb"))
    args = ap.parse_args(argv)
    image, source = test_image(args.size)
    h, w = working_size(image.shape[:2], args.max_pixels)
    print(f"image {args.size} x {args.size} ({source}), {args.method} at {w} x {h}")
    rows = []
    times: list[float] = []
    start = time.perf_counter()
    levels = compute_levels(image, DEFAULT_SEGMENTS, method=args.method, max_pixels=args.max_pixels,
                            on_level=lambda i, lv: times.append(time.perf_counter()))
    marks = [start] + times
    doc = LabelDocument(image)
    centre = (args.size / 2, args.size / 2)
    view = (0, 0, min(args.size, 1600), min(args.size, 2560))
    for i, lv in enumerate(levels):

        def click(lv=lv):
            painter = SuperpixelPainter(doc, lv)
            painter.press(centre, 1)
            painter.release()
            doc.undo()

        def drag(lv=lv):
            painter = SuperpixelPainter(doc, lv)
            painter.press((args.size * 0.3, args.size * 0.3), 1)
            for k in range(1, 21):
                painter.move((args.size * 0.3, args.size * (0.3 + 0.02 * k)))
            painter.release()
            doc.undo()

        rows.append([DEFAULT_SEGMENTS[i], lv.n, round((marks[i + 1] - marks[i]) * 1000),
                     round(median_seconds(click, runs=3) * 1000, 1), round(median_seconds(drag, runs=3) * 1000, 1),
                     round(median_seconds(lambda lv=lv: lv.boundaries(view), runs=3) * 1000, 1)])
    print(table(["asked", "superpixels", "precompute ms", "click ms", "drag 20 moves ms", "boundaries 2560x1600 ms"],
                rows))
    labels = np.where(levels[0].segments[levels[0]._rows][:, levels[0]._cols] % 3 == 0, 1, 0).astype(np.uint8)
    rng = np.random.default_rng(0)
    labels[rng.random(labels.shape) < 0.002] = 255  # brush gaps
    labels[rng.random(labels.shape) < 0.001] = 2    # specks
    ops = {"fill holes": lambda lab: cleanup.fill_holes(lab),
           "remove islands < 64 px": lambda lab: cleanup.remove_islands(lab, 64),
           "smooth radius 2": lambda lab: cleanup.smooth(lab, 2)}
    rows = []
    for name, op in ops.items():
        t = median_seconds(lambda op=op: cleanup.change(labels, op(labels)), runs=1, warmup=0)
        ch = cleanup.change(labels, op(labels))
        rows.append([name, round(t * 1000), 0 if ch is None else ch.count])
    print(table(["clean-up (all classes)", "ms incl. preview", "pixels changed"], rows))


if __name__ == "__main__":
    main()
