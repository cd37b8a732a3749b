"""Does "refine uncertain regions" (SAM prompted where the model's entropy is high) save annotation effort?

For each image with ground truth: the model's proposal, the proposal refined by SAM, and the effort
(`app.core.loop.effort`: regions to draw, boundary pixels, wrong pixels) each leaves against the truth.
Needs a real SAM 2 checkpoint the person has (nothing is downloaded) and a SegAssist model file.

    python -m bench.sam_refine --sam sam2.1_hiera_tiny.pt --model MODEL.safetensors \\
        --images DIR --labels DIR [--limit 20] [--min-region 64] [--quantile 0.9]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import engine
from app.core.loop.effort import Effort, effort
from app.core.smart.sam_prompts import refine_uncertain
from bench.timing import table
from engine.sam import SamModel

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sam", type=Path, required=True, help="a SAM 2 checkpoint (official file name)")
    ap.add_argument("--model", type=Path, required=True, help="a SegAssist model file (.safetensors)")
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--labels", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--min-region", type=int, default=64, help="smallest region that counts as work (pixels)")
    ap.add_argument("--quantile", type=float, default=0.9, help="entropy quantile above which a pixel is uncertain")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sam-override", action="append", default=[], help="a Hydra override of SAM's config")
    args = ap.parse_args(argv)
    predictor = engine.Predictor(args.model, device=args.device)
    sam = SamModel(args.sam, device=args.device, overrides=args.sam_override)
    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:args.limit]
    zero = Effort(0, 0, 0, 0)
    base, refined_total, rows, seconds = zero, zero, [], 0.0
    for path in files:
        label_path = args.labels / f"{path.stem}.png"
        if not label_path.exists():
            continue
        image, truth = engine.read_image(path), engine.read_label(label_path)
        pred = predictor.predict(image)
        start = time.perf_counter()
        emb = sam.embed(image)
        refined = refine_uncertain(sam, emb, pred.labels.astype(np.uint8), pred.entropy,
                                   threshold=float(np.quantile(pred.entropy, args.quantile)))
        seconds += time.perf_counter() - start
        before = effort(truth, pred.labels, min_region=args.min_region)
        after = effort(truth, refined, min_region=args.min_region)
        base, refined_total = base + before, refined_total + after
        rows.append([path.name, before.regions, after.regions, before.boundary_px, after.boundary_px,
                     before.wrong_px, after.wrong_px])
    rows.append(["total", base.regions, refined_total.regions, base.boundary_px, refined_total.boundary_px,
                 base.wrong_px, refined_total.wrong_px])
    print(table(["image", "regions", "regions refined", "boundary px", "boundary px refined", "wrong px",
                 "wrong px refined"], rows))
    if base.boundary_px:
        print(f"refined / proposal boundary px: {refined_total.boundary_px / base.boundary_px:.3f}; "
              f"SAM time {seconds / max(len(rows) - 1, 1):.2f} s per image")


if __name__ == "__main__":
    main()
