"""Training benchmarks: step speed per architecture and precision, and time to reach an mIoU on CamVid.

    python -m bench.train speed              # crop 512, every architecture, default + small backbone, fp32 + bf16
    python -m bench.train camvid             # train -> val on camvid-mini until mIoU 0.5, prints the curve
    python -m bench.train speed --quick      # smoke runs at small settings
    python -m bench.train camvid --quick

The CamVid run (deeplabv3plus/resnet18, crop 192, batch 8, AdamW 1e-3, validation every 100 iterations) starts
from scratch unless `--pretrained FILE` names local ImageNet backbone weights; from scratch it is slow to
reach 0.5 (a smoke run on a busy CPU: 0.27 after 1,300 iterations). It stops at the target mIoU, at
`--iters`, or after `--max-minutes`.

Speed is measured on random tensors (the training step alone: forward_train, loss, backward, optimiser
step), as the median of several steps after a warm-up step; bf16 and fp32 are measured side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import engine
from bench.timing import median_seconds
from engine.precision import autocast
from training import TrainConfig, train
from training.distributed import Runtime
from training.losses import segmentation_loss
from training.schedule import build_optimizer, family, recipe

SMALL_BACKBONES = {"cnn": "resnet18", "setr": "vit_tiny_patch16_384", "segmenter": "vit_tiny_patch16_384"}
# camvid-mini sits beside the project's checkout (../shared/data); worktrees are one level deeper.
_ROOT = Path(__file__).resolve().parents[1]
CAMVID = next((p for p in (_ROOT.parent / "shared/data/camvid-mini", _ROOT.parents[1] / "shared/data/camvid-mini")
               if p.is_dir()), _ROOT.parent / "shared/data/camvid-mini")
CAMVID_CLASSES = ("sky", "building", "pole", "road", "sidewalk", "tree", "sign/symbol", "fence", "car",
                  "pedestrian", "bicyclist")


def step_seconds(arch: str, backbone: str | None, crop: int, batch: int, steps: int, precision: str,
                 device: str) -> float:
    """Median seconds per training step (after one warm-up step) on random data."""
    torch.manual_seed(0)
    model = engine.create_model(arch, 11, backbone=backbone).to(device).train()
    cfg = TrainConfig(images=Path("."), labels=Path("."), out=Path("bench.safetensors"), classes=CAMVID_CLASSES,
                      iterations=1000)
    optimizer = build_optimizer(model, recipe(cfg, arch))
    rt = Runtime(torch.device(device), precision)
    x = torch.randn(batch, 3, crop, crop, device=device)
    y = torch.randint(0, 11, (batch, crop, crop), device=device)

    def step() -> None:
        with autocast(rt.device, rt.precision):
            outputs = model.forward_train(x)
        loss, _ = segmentation_loss(outputs, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    return median_seconds(step, runs=steps, warmup=1)


def bench_speed(args: argparse.Namespace) -> None:
    archs = args.archs.split(",") if args.archs else engine.list_architectures()
    print(f"# training step speed: crop {args.crop}, batch {args.batch}, {args.device}, "
          f"{torch.get_num_threads()} threads, median of {args.steps} steps")
    print(f"{'architecture':<18} {'backbone':<24} {'precision':<9} {'s/iter':>8} {'iter/s':>8} {'img/s':>8} "
          f"{'vs fp32':>8}")
    for arch in archs:
        kinds = args.backbones.split(",")
        for kind in kinds:
            backbone = None if kind == "default" else SMALL_BACKBONES[family(arch)]
            name = backbone or engine.registry.architecture_class(arch).default_backbone
            fp32 = None
            for precision in args.precisions.split(","):
                try:
                    t = step_seconds(arch, backbone, args.crop, args.batch, args.steps, precision, args.device)
                except (RuntimeError, ValueError) as exc:
                    print(f"{arch:<18} {name:<24} {precision:<9} failed: {str(exc).splitlines()[0][:60]}")
                    continue
                fp32 = t if precision == "fp32" else fp32
                ratio = f"{fp32 / t:.2f}x" if fp32 and precision != "fp32" else ""
                print(f"{arch:<18} {name:<24} {precision:<9} {t:>8.3f} {1 / t:>8.3f} {args.batch / t:>8.2f} "
                      f"{ratio:>8}", flush=True)


def bench_camvid(args: argparse.Namespace) -> None:
    data = Path(args.data)
    if not (data / "train" / "images").is_dir():
        sys.exit(f"{data}: not the camvid-mini folder (train/images, train/labels, val/images, val/labels)")
    out = Path(args.out)
    cfg = TrainConfig(
        images=data / "train" / "images", labels=data / "train" / "labels", val_images=data / "val" / "images",
        val_labels=data / "val" / "labels", out=out, classes=CAMVID_CLASSES, arch=args.arch,
        backbone=args.backbone, pretrained=args.pretrained or False, iterations=args.iters, batch_size=args.batch,
        crop_size=args.crop,
        optimizer=args.optimizer, lr=args.lr, precision=args.precision, device=args.device,
        val_interval=args.val_interval, checkpoint_interval=10**9, log_interval=args.val_interval, seed=0,
        bn_images=args.bn_images,
    )
    t0 = time.perf_counter()
    curve, losses, reached = [], {}, []

    def on_event(event) -> None:
        if event.kind == "step":
            losses[event.iteration] = event.loss
        elif event.kind == "validation":
            curve.append((event.iteration, time.perf_counter() - t0, event.miou, event.pixel_accuracy))
            print(f"{event.iteration:>6} {curve[-1][1]:>9.1f} {losses.get(event.iteration, float('nan')):>8.4f} "
                  f"{event.miou:>7.4f} {event.pixel_accuracy:>7.4f}", flush=True)
            if event.miou >= args.target and not reached:
                reached.append(curve[-1])

    def should_stop() -> bool:
        return bool(reached) or time.perf_counter() - t0 > args.max_minutes * 60

    print(f"# camvid-mini train -> val: {args.arch} ({args.backbone}), crop {args.crop}, batch {args.batch}, "
          f"{args.optimizer} lr {args.lr or 'default'}, {args.precision}, {args.device}, bn_images {args.bn_images}, "
          f"{torch.get_num_threads()} threads; until mIoU {args.target} or {args.max_minutes} min")
    print(f"{'iter':>6} {'wall_s':>9} {'loss':>8} {'mIoU':>7} {'acc':>7}")
    result = train(cfg, on_event=on_event, should_stop=should_stop)
    if reached:
        it, wall, miou, _ = reached[0]
        print(f"reached mIoU {miou:.4f} >= {args.target} at iteration {it} after {wall:.1f} s")
    else:
        print(f"did not reach mIoU {args.target}: best {result.best_miou} after {result.iterations} iterations, "
              f"{time.perf_counter() - t0:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"curve": curve, "reached": reached[0] if reached else None}))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("speed", help="seconds per training step")
    s.add_argument("--archs", help="comma-separated (default: all registered)")
    s.add_argument("--backbones", default="default,small", help="default, small or both")
    s.add_argument("--precisions", default="fp32,bf16")
    s.add_argument("--crop", type=int, default=512)
    s.add_argument("--batch", type=int, default=2)
    s.add_argument("--steps", type=int, default=3)
    s.add_argument("--device", default="cpu")
    s.add_argument("--threads", type=int)
    s.add_argument("--quick", action="store_true", help="crop 128, small backbones, 2 steps")
    c = sub.add_parser("camvid", help="time to reach an mIoU on camvid-mini, and the curve")
    c.add_argument("--data", default=str(CAMVID))
    c.add_argument("--arch", default="deeplabv3plus")
    c.add_argument("--backbone", default="resnet18")
    c.add_argument("--pretrained", help="local backbone weights file (without it, from scratch)")
    c.add_argument("--crop", type=int, default=192)
    c.add_argument("--batch", type=int, default=8)
    c.add_argument("--iters", type=int, default=3000)
    c.add_argument("--optimizer", default="adamw", help="adamw (default: faster from scratch) or sgd")
    c.add_argument("--lr", type=float, default=1e-3)
    c.add_argument("--precision", default="auto")
    c.add_argument("--device", default="auto")
    c.add_argument("--target", type=float, default=0.5)
    c.add_argument("--val-interval", type=int, default=100)
    c.add_argument("--max-minutes", type=float, default=60)
    c.add_argument("--out", default="/tmp/segassist-bench-camvid.safetensors")
    c.add_argument("--json", help="also write the curve here")
    c.add_argument("--bn-images", type=int, default=64,
                   help="images for BatchNorm re-estimation before each validation (0: running statistics)")
    c.add_argument("--threads", type=int)
    c.add_argument("--quick", action="store_true", help="crop 128, 40 iterations, validation every 20")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.what == "speed":
        if args.quick:
            args.crop, args.backbones, args.steps = min(args.crop, 128), "small", 2
        bench_speed(args)
    else:
        if args.quick:
            args.crop, args.iters, args.val_interval = 128, 40, 20
        bench_camvid(args)


if __name__ == "__main__":
    main()
