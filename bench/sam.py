"""SAM 2 latency: image encoder ms per image, mask decoder ms per click, cache read ms.

No weights are downloaded: each asked SAM 2.1 config is built with random weights from the package's
own modules and saved in the official checkpoint layout, then loaded through `engine.sam` like a
person's checkpoint (latency does not depend on the weights' values).

    python -m bench.sam [--models tiny,small] [--device cpu] [--sizes 720x960,4096x4096] [--runs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.timing import median_seconds, table
from engine.sam import CONFIGS, EmbeddingCache, SamModel, image_digest


def random_checkpoint(folder: Path, name: str) -> Path:
    import torch
    from sam2.build_sam import build_sam2

    torch.manual_seed(0)
    model = build_sam2(CONFIGS[f"sam2.1_hiera_{name}"], None, device="cpu")
    path = folder / f"sam2.1_hiera_{name}.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


def measure(sam: SamModel, image: np.ndarray, cache: EmbeddingCache, runs: int, sync) -> list:
    """encoder ms, click ms, refining click ms, box ms, cache read ms, content hash ms, embedding MiB."""
    h, w = image.shape[:2]
    emb = sam.embed(image)
    enc = median_seconds(lambda: (sam.embed(image), sync()), runs=runs)
    point = (h / 2 + 0.5, w / 2 + 0.5)
    click = median_seconds(lambda: sam.segment(emb, [point], [1]), runs=runs * 3)
    first = sam.segment(emb, [point], [1])
    refine = median_seconds(lambda: sam.segment(emb, [point, (h / 4, w / 4)], [1, 0], mask_input=first.logits),
                            runs=runs * 3)
    box = median_seconds(lambda: sam.segment(emb, box=(h / 4, w / 4, 3 * h / 4, 3 * w / 4)), runs=runs * 3)
    key = image_digest(image)
    cache.put(sam.key, key, emb)
    read = median_seconds(lambda: cache.get(sam.key, key), runs=runs)
    digest = median_seconds(lambda: image_digest(image), runs=runs)
    return [round(enc * 1000), round(click * 1000, 1), round(refine * 1000, 1), round(box * 1000, 1),
            round(read * 1000, 1), round(digest * 1000, 1), round(emb.nbytes / 2**20, 1)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="tiny", help="comma list of tiny, small, base_plus, large")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default="720x960,4096x4096", help="image sizes HxW")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    import torch

    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cache = EmbeddingCache(folder / "cache")
        for name in args.models.split(","):
            start = time.perf_counter()
            sam = SamModel(random_checkpoint(folder, name), device=args.device)
            load_s = time.perf_counter() - start
            for size in args.sizes.split(","):
                h, w = (int(v) for v in size.split("x"))
                rng = np.random.default_rng(0)
                image = np.repeat(np.repeat(rng.integers(0, 255, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8),
                                            16, 0), 16, 1)[:h, :w]
                rows.append([name, args.device, f"{w}x{h}", round(load_s, 1),
                             *measure(sam, image, cache, args.runs, sync)])
    print(f"torch threads: {torch.get_num_threads()}")
    print(table(["model", "device", "image", "load s", "encoder ms", "click ms", "refine click ms", "box ms",
                 "cache read ms", "content hash ms", "embedding MiB"], rows))


if __name__ == "__main__":
    main()
