"""Segmenter with 16x16 against 8x8 patches: tokens, latency and their ratios (the paper: 4x the tokens for
about 5.7x lower throughput with ViT-B, for +1 mIoU).

    python -m bench.segmenter_patch [--width small|base] [--arch segmenter_mask] [--size 512] [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import engine
from bench.latency import precision_context
from bench.timing import table

BACKBONES = {
    "small": ("vit_small_patch16_224", "vit_small_patch8_224"),
    "base": ("vit_base_patch16_224", "vit_base_patch8_224"),
}


def side_by_side(models: list[torch.nn.Module], x: torch.Tensor, precision: str, runs: int) -> list[float]:
    """Median seconds per model, the models run in alternation so that load on the machine hits both alike."""
    times: list[list[float]] = [[] for _ in models]
    with torch.inference_mode(), precision_context(precision):
        for m in models:
            m(x)  # warm-up
        for _ in range(runs):
            for i, m in enumerate(models):
                start = time.perf_counter()
                m(x)
                times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", choices=sorted(BACKBONES), default="small")
    parser.add_argument("--arch", choices=["segmenter_linear", "segmenter_mask"], default="segmenter_mask")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 128x128, one run")
    args = parser.parse_args(argv)
    size, runs = (128, 1) if args.quick else (args.size, args.runs)
    torch.manual_seed(0)
    models = [engine.create_model(args.arch, 150, backbone=b).eval() for b in BACKBONES[args.width]]
    x = torch.randn(1, 3, size, size)
    tokens = [(size // m.size_divisor) ** 2 for m in models]
    rows = []
    for precision in ("fp32", "bf16"):
        t16, t8 = side_by_side(models, x, precision, runs)
        rows.append([precision, tokens[0], tokens[1], tokens[1] / tokens[0], t16 * 1e3, t8 * 1e3, t8 / t16])
    print(f"\n{args.arch}, {' vs '.join(BACKBONES[args.width])}, 1x3x{size}x{size}, CPU, "
          f"{torch.get_num_threads()} threads, median of {runs} runs\n")
    print(table(["precision", "tokens p16", "tokens p8", "token ratio", "ms p16", "ms p8", "latency ratio"], rows))
    print("\npaper (ViT-B, GPU): token ratio 4, throughput about 5.7x lower")


if __name__ == "__main__":
    main()
