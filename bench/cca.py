"""Criss-cross attention (two passes, shared weights) against a non-local block.

The CCNet paper's claim: 11x less memory and about 85% fewer FLOPs than a non-local block on a
97x97 feature map with 512 channels. Measured here for an inference forward on the CPU.

    python -m bench.cca [--size 97] [--channels 512] [--runs 5]
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from bench.memory import peak_memory
from bench.timing import count_macs, interleaved_seconds, table
from engine.models.ccnet import CrissCrossAttention


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block (Wang et al., 2018) with C/2 inner channels."""

    def __init__(self, channels: int):
        super().__init__()
        inner = channels // 2
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.out = nn.Conv2d(inner, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)  # [B, HW, C/2]
        phi = self.phi(x).flatten(2)  # [B, C/2, HW]
        attn = torch.softmax(theta @ phi, dim=-1)  # [B, HW, HW]
        y = (attn @ self.g(x).flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, -1, h, w)
        return x + self.out(y)


class TwoPasses(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.cca = CrissCrossAttention(channels)
        nn.init.constant_(self.cca.gamma, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cca(self.cca(x))


def runner(block: nn.Module, x: torch.Tensor):
    block.eval()

    def run():
        with torch.inference_mode():
            return block(x)

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=97)
    parser.add_argument("--channels", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    x = torch.randn(1, args.channels, args.size, args.size)
    runs = {"criss-cross x2": runner(TwoPasses(args.channels), x), "non-local": runner(NonLocalBlock(args.channels), x)}
    for run in runs.values():
        run()  # lazy initialisation outside the measurements
    seconds = interleaved_seconds(runs, args.runs)
    stats = {}
    for name, run in runs.items():
        peak, _ = peak_memory(run)
        stats[name] = {"gmac": count_macs(run) / 1e9, "peak_mb": peak / 2**20, "seconds": seconds[name]}
    cc, nl = stats["criss-cross x2"], stats["non-local"]
    print(f"1x{args.channels}x{args.size}x{args.size}, inference forward, CPU fp32, "
          f"{torch.get_num_threads()} threads, median of {args.runs} interleaved runs\n")
    rows = [["criss-cross x2", cc["gmac"], cc["peak_mb"], cc["seconds"] * 1e3],
            ["non-local", nl["gmac"], nl["peak_mb"], nl["seconds"] * 1e3]]
    print(table(["block", "GMAC", "peak MiB", "ms"], rows))
    print(f"\nmemory: non-local / criss-cross = {nl['peak_mb'] / cc['peak_mb']:.1f}x (paper: 11x)")
    print(f"FLOPs: criss-cross uses {100 * (1 - cc['gmac'] / nl['gmac']):.1f}% fewer (paper: ~85%)")
    print(f"time:  non-local / criss-cross = {nl['seconds'] / cc['seconds']:.1f}x")


if __name__ == "__main__":
    main()
