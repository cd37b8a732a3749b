"""The cost of one `engine.explain` call relative to one forward pass, per architecture.

    python -m bench.explain [--archs setr_naive,ccnet] [--size 512] [--runs 3] [--default-backbones] [--quick]
"""

from __future__ import annotations

import argparse
import statistics

import torch

import engine
from bench.latency import SMALL_BACKBONES
from bench.timing import median_seconds, table


def measure(arch: str, size: int, runs: int, small: bool) -> list[object]:
    backbone = SMALL_BACKBONES.get(arch) if small else None
    model = engine.create_model(arch, 19, backbone=backbone).eval()
    x = torch.randn(1, 3, size, size)
    point = (size // 3, size // 2)

    def forward():
        with torch.inference_mode():
            return model(x)

    maps = engine.explain(model, x, point)
    forward()  # warm-up
    # Alternate the two, so that load on the machine hits both alike.
    times = [[], []]
    for _ in range(runs):
        times[0].append(median_seconds(forward, runs=1, warmup=0))
        times[1].append(median_seconds(lambda: engine.explain(model, x, point), runs=1, warmup=0))
    t_forward, t_explain = (statistics.median(t) for t in times)
    return [arch, model.config["backbone"], len(maps), t_forward * 1e3, t_explain * 1e3, t_explain / t_forward]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default=",".join(engine.list_architectures()))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--default-backbones", action="store_true", help="the papers' backbones, not small ones")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 96x96, one run")
    args = parser.parse_args(argv)
    size, runs = (96, 1) if args.quick else (args.size, args.runs)
    torch.manual_seed(0)
    rows = []
    for arch in args.archs.split(","):
        rows.append(measure(arch, size, runs, small=not args.default_backbones))
        print(f"  measured {arch} / {rows[-1][1]}", flush=True)
    print(f"\n1x3x{size}x{size}, CPU fp32, {torch.get_num_threads()} threads, median of {runs} runs; forward under "
          f"inference_mode\n")
    print(table(["architecture", "backbone", "maps", "forward ms", "explain ms", "explain / forward"], rows))


if __name__ == "__main__":
    main()
