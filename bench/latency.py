"""Forward latency per architecture at 512x512 on the CPU, fp32 and bf16 autocast, beside the time of its
backbone alone (the decoder's overhead as a ratio; for the ViT architectures the backbone is the timm ViT
encoder, so Segmenter-linear's ratio should be close to 1).

    python -m bench.latency [--archs deeplabv3plus,ccnet] [--size 512] [--runs 5] [--small-only]
"""

from __future__ import annotations

import argparse
import contextlib

import torch

import engine
from bench.timing import interleaved_seconds, table

# A backbone small enough for a laptop CPU, per architecture (the default is the paper's).
SMALL_BACKBONES = {
    "deeplabv3plus": "mobilenetv3_large_100",
    "encnet": "resnet18",
    "ccnet": "resnet18",
    "setr_naive": "vit_small_patch16_384",
    "setr_pup": "vit_small_patch16_384",
    "setr_mla": "vit_small_patch16_384",
    "segmenter_linear": "vit_small_patch16_384",
    "segmenter_mask": "vit_small_patch16_384",
}

def precision_context(precision: str):
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def runner(module: torch.nn.Module, x: torch.Tensor, precision: str):
    def run():
        with torch.inference_mode(), precision_context(precision):
            return module(x)

    return run


def measure(arch: str, backbone: str | None, size: int, runs: int) -> list[object]:
    model = engine.create_model(arch, 19, backbone=backbone).eval()
    x = torch.randn(1, 3, size, size)
    # All four in turns, so that the ratios compare runs made under the same conditions.
    t = interleaved_seconds({(part, p): runner(module, x, p) for part, module in (("model", model),
                             ("backbone", model.backbone)) for p in ("fp32", "bf16")}, runs=runs)
    row: list[object] = [arch, model.config["backbone"]]
    for p in ("fp32", "bf16"):
        row += [t["model", p] * 1e3, t["backbone", p] * 1e3, t["model", p] / t["backbone", p]]
    row.append(t["model", "fp32"] / t["model", "bf16"])
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default=",".join(engine.list_architectures()))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--small-only", action="store_true", help="skip the papers' default backbones")
    args = parser.parse_args(argv)
    rows = []
    for arch in args.archs.split(","):
        backbones = [SMALL_BACKBONES.get(arch)] if args.small_only else [None, SMALL_BACKBONES.get(arch)]
        for backbone in dict.fromkeys(b for b in backbones if b is not None or not args.small_only):
            rows.append(measure(arch, backbone, args.size, args.runs))
            print(f"  measured {arch} / {rows[-1][1]}", flush=True)
    print(f"\n1x3x{args.size}x{args.size}, CPU, {torch.get_num_threads()} threads, "
          f"median of {args.runs} interleaved runs (ms)\n")
    print(table(["architecture", "backbone", "fp32", "backbone fp32", "ratio", "bf16", "backbone bf16", "ratio",
                 "bf16 speed-up"], rows))


if __name__ == "__main__":
    main()
