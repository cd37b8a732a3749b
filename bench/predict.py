"""The predictor end to end (uint8 image in, labels out) per architecture: latency in fp32, bf16 (with and
without channels_last) and onnxruntime, peak memory, the tiler on a 2048x1024 image, throughput at batch 8,
and beside DeepLabV3+ the plain forward of segmentation_models_pytorch's DeepLabV3Plus on the same timm
encoder and output stride (when the `bench` extra is installed).

    python -m bench.predict [--archs deeplabv3plus,ccnet] [--small-only] [--size 512] [--runs 5]
                            [--no-onnx] [--device cpu|cuda] [--quick]

On CUDA the precisions are fp32, fp16 and bf16 (untested here: this machine has no GPU).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

import engine
from bench.latency import SMALL_BACKBONES
from bench.memory import peak_memory
from bench.timing import median_seconds, table
from engine.precision import autocast, cpu_supports_bf16, resolve_device

NUM_CLASSES = 19
TILER_IMAGE = (1024, 2048)  # height, width: a Cityscapes frame
TILE = 512


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def precisions(device: torch.device) -> list[str]:
    if device.type == "cuda":
        return ["fp32", "fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])
    return ["fp32"] + (["bf16"] if cpu_supports_bf16() else [])


def peak_bytes(predictor: engine.Predictor, image: np.ndarray) -> int:
    if predictor.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(predictor.device)
        base = torch.cuda.memory_allocated(predictor.device)
        predictor.predict(image)
        return torch.cuda.max_memory_allocated(predictor.device) - base
    return peak_memory(lambda: predictor.predict(image))[0]


def smp_forward_seconds(backbone: str, output_stride: int, size: int, runs: int, device: torch.device,
                        precision: str) -> float | None:
    """Plain forward of segmentation_models_pytorch's DeepLabV3Plus on a normalised tensor."""
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        return None
    model = smp.DeepLabV3Plus(encoder_name=f"tu-{backbone}", encoder_weights=None,
                              encoder_output_stride=output_stride, classes=NUM_CLASSES).eval().to(device)
    x = torch.randn(1, 3, size, size, device=device)

    def run():
        with torch.inference_mode(), autocast(device, precision):
            out = model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return out

    return median_seconds(run, runs=runs, warmup=1)


def measure(arch: str, backbone: str | None, args, device: torch.device) -> tuple[list, list | None]:
    model = engine.create_model(arch, NUM_CLASSES, backbone=backbone).eval()
    image = random_image(args.size, args.size)
    row: list[object] = [arch, model.config["backbone"]]
    seconds = {}
    for precision in precisions(device):
        predictor = engine.Predictor(model, device=device, precision=precision)
        seconds[precision] = median_seconds(lambda p=predictor: p.predict(image), runs=args.runs, warmup=1)
    if "bf16" in seconds and device.type == "cpu":
        model.to(memory_format=torch.contiguous_format)
        contiguous = engine.Predictor(model, device=device, precision="bf16", channels_last=False)
        seconds["bf16 contiguous"] = median_seconds(lambda: contiguous.predict(image), runs=args.runs, warmup=1)
    onnx = None
    if not args.no_onnx:
        with tempfile.TemporaryDirectory() as folder:
            path = engine.export_onnx(model, Path(folder) / "m.onnx")
            onnx_predictor = engine.Predictor(path, device=device)
            onnx = median_seconds(lambda: onnx_predictor.predict(image), runs=args.runs, warmup=1)
    best = engine.Predictor(model, device=device)  # the default precision
    peak = peak_bytes(best, image)
    tiled = engine.Predictor(model, device=device, tile=TILE)
    big = random_image(*args.tiler_image)
    tiler = median_seconds(lambda: tiled.predict(big), runs=max(1, args.runs // 2), warmup=1)
    windows = tiled.predict(big).tiles
    batched = engine.Predictor(model, device=device, tile=args.size, overlap=0, batch_size=8)
    eight = random_image(2 * args.size, 4 * args.size)  # eight windows, one batch
    per_batch = median_seconds(lambda: batched.predict(eight), runs=max(1, args.runs // 2), warmup=1)
    for precision in ("fp32", "bf16", "fp16"):
        if device.type == "cpu" and precision == "fp16":
            continue
        row.append(seconds.get(precision, float("nan")) * 1e3)
    if device.type == "cpu":
        row.append(seconds.get("bf16 contiguous", float("nan")) * 1e3)
    row += [onnx * 1e3 if onnx is not None else "-", peak / 2**20, tiler, windows / tiler, 8 / per_batch]
    comparison = None
    if arch == "deeplabv3plus":
        os_ = model.config.get("output_stride", 16)
        smp_fp32 = smp_forward_seconds(model.config["backbone"], os_, args.size, args.runs, device, "fp32")
        if smp_fp32 is not None:
            default = best.precision
            smp_same = smp_forward_seconds(model.config["backbone"], os_, args.size, args.runs, device, default)
            comparison = [model.config["backbone"], os_, smp_fp32 * 1e3, seconds["fp32"] * 1e3,
                          seconds["fp32"] / smp_fp32, f"{smp_same * 1e3:.3g} ({default})",
                          f"{seconds[default] * 1e3:.3g} ({default})", seconds[default] / smp_same,
                          seconds[default] / smp_fp32]
    return row, comparison


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default=",".join(engine.list_architectures()))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--small-only", action="store_true", help="skip the papers' default backbones")
    parser.add_argument("--backbone", help="one backbone for every architecture (e.g. a timm test_* model)")
    parser.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime column (exports are slow)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tiler-image", type=int, nargs=2, default=TILER_IMAGE, metavar=("H", "W"))
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: small backbones, 256x256, a 1024x512 tiler image, 1 run")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.runs, args.small_only, args.tiler_image = 256, 1, True, [512, 1024]
    device = resolve_device(args.device)
    rows, comparisons = [], []
    for arch in args.archs.split(","):
        if args.backbone:
            backbones = [args.backbone]
        elif args.small_only:
            backbones = [SMALL_BACKBONES.get(arch)]
        else:
            backbones = list(dict.fromkeys([None, SMALL_BACKBONES.get(arch)]))
        for backbone in backbones:
            row, comparison = measure(arch, backbone, args, device)
            rows.append(row)
            if comparison:
                comparisons.append(comparison)
            print(f"  measured {arch} / {row[1]}", flush=True)
    threads = f"{torch.get_num_threads()} threads" if device.type == "cpu" else torch.cuda.get_device_name(device)
    print(f"\nPredictor.predict on a {args.size}x{args.size} uint8 image, {NUM_CLASSES} classes, {device} "
          f"({threads}), median of {args.runs} runs; times in ms unless marked\n")
    headers = ["architecture", "backbone", "fp32", "bf16"] + (["fp16"] if device.type == "cuda" else [])
    if device.type == "cpu":
        headers.append("bf16 no channels_last")
    headers += ["onnxruntime", "peak MiB", f"{args.tiler_image[1]}x{args.tiler_image[0]} tiled s", "tiles/s",
                "images/s @8"]
    print(table(headers, rows))
    if comparisons:
        print("\nDeepLabV3+ beside segmentation_models_pytorch's DeepLabV3Plus (plain forward of a normalised "
              "tensor; ours is the whole predict)\n")
        print(table(["backbone", "OS", "smp fp32", "ours fp32", "ours/smp", "smp", "ours", "ours/smp",
                     "ours/smp fp32"], comparisons))
        print("\nours/smp < 1: our predictor (pre-processing, network, softmax, labels) is faster than smp's forward")
    else:
        print("\n(segmentation_models_pytorch not installed or no deeplabv3plus row: no side-by-side; "
              "pip install -e .[bench])")


if __name__ == "__main__":
    main()
