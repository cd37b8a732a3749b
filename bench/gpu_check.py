"""SegAssist on a CUDA GPU, one command: inference and training throughput, peak memory, ONNX Runtime.

    PYTHONPATH=. bench/gpu_check                         # every architecture, small and paper backbone (~7 min, H100)
    PYTHONPATH=. bench/gpu_check --archs deeplabv3plus --small-only
    PYTHONPATH=. bench/gpu_check --device cpu --quick    # a smoke run in seconds (timm's test_* backbones)

For every architecture (`engine.list_architectures()`) with its first small backbone and its paper backbone
(random weights: nothing is downloaded), on one device:
- inference through `engine.Predictor`'s own path (uint8 image in; normalisation, autocast, softmax, labels,
  confidence and entropy out), images/s on a 512x512 image (whole) and a 1024x2048 image (sliding 512
  windows, a third overlapping), in fp32, fp16 and bf16 (bf16 where the GPU has it);
- the peak GPU memory (weights included) of the 1024x2048 prediction at the device's default precision;
- training throughput through `training.train` itself (its data loader with up to 8 worker processes, AMP
  at the default precision, the SGD step), crops/s at crop 512 after warm-up steps, and its peak GPU
  memory; the batch (8) is halved until it fits. With small backbones the loader may be what limits it;
- with `--onnx` (default on CUDA for the small backbones; `--onnx-all` adds the paper ones) the exported
  ONNX file through onnxruntime's CUDA provider, where this onnxruntime has it: images/s at 512x512.

Each timed figure runs for `--budget` seconds after warm-up (at least `MIN_RUNS` runs); `--max-minutes`
bounds the whole run (what is left is reported as skipped). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import engine
from engine.onnx_backend import onnx_cuda_available
from engine.precision import cpu_supports_bf16, resolve_device, resolve_precision
from engine.registry import architecture_class

NUM_CLASSES = 19
MIN_RUNS = 3
TRAIN_WARMUP_STEPS = 3
CLASSES = ("background", "disk", "box", "triangle", "ring")


@dataclass
class Settings:
    device: torch.device
    size: int = 512  # the whole image: size x size
    big: tuple[int, int] = (1024, 2048)  # the sliding-window image (height, width)
    tile: int = 512
    crop: int = 512
    batch: int = 8
    budget: float = 1.0  # seconds per timed figure, after warm-up
    train_budget: float = 4.0
    warmup: int = 1
    quick: bool = False
    onnx: str = "small"  # "off", "small" or "all"
    deadline: float = math.inf  # time.perf_counter() by which to stop measuring
    data: Path | None = None  # the synthetic training images (images/, labels/)


@dataclass
class Row:
    arch: str
    backbone: str
    kind: str  # "small", "paper" or "test"
    params_m: float = math.nan
    infer: dict[tuple[str, str], float] = field(default_factory=dict)  # (size name, precision) -> images/s
    infer_peak_mib: float = math.nan
    train: str = "-"
    train_peak_mib: float = math.nan
    onnx: str = "-"
    notes: list[str] = field(default_factory=list)


def precisions(device: torch.device) -> list[str]:
    """The inference precisions measured on `device`."""
    if device.type == "cuda":
        return ["fp32", "fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])
    return ["fp32"] + (["bf16"] if cpu_supports_bf16() else [])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float:
    if device.type != "cuda":
        return math.nan
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def free_memory(device: torch.device) -> None:
    """Return what the last measurement held to the GPU (on the CPU nothing: a full collection takes long)."""
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()


def per_second(fn: Callable[[], object], s: Settings, units: int = 1) -> float:
    """Units per second of `fn()`: `s.warmup` untimed calls, then calls until `s.budget` seconds have passed
    (at least `MIN_RUNS`), the device synchronised before the clock starts and stops."""
    for _ in range(s.warmup):
        fn()
    synchronize(s.device)
    runs, start = 0, time.perf_counter()
    while runs < MIN_RUNS or time.perf_counter() - start < s.budget:
        fn()
        runs += 1
    synchronize(s.device)
    return runs * units / (time.perf_counter() - start)


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def measure_inference(model: engine.SegModel, row: Row, s: Settings) -> None:
    whole, big = random_image(s.size, s.size), random_image(*s.big)
    sizes = {f"{s.size}x{s.size}": (whole, None), f"{s.big[0]}x{s.big[1]}": (big, s.tile)}
    for precision in precisions(s.device):
        for name, (image, tile) in sizes.items():
            if time.perf_counter() > s.deadline:
                row.notes.append("inference partly skipped (time)")
                return
            predictor = engine.Predictor(model, device=s.device, precision=precision, tile=tile)
            row.infer[name, precision] = per_second(lambda p=predictor, i=image: p.predict(i), s)
            predictor = None  # (its folded copy of the network freed before the next)
    default = resolve_precision("auto", s.device)
    predictor = engine.Predictor(model, device=s.device, precision=default, tile=s.tile)
    predictor.predict(big)  # (the allocator settled)
    reset_peak(s.device)
    predictor.predict(big)
    row.infer_peak_mib = peak_mib(s.device)  # weights included


class _Measured(Exception):
    """Raised from the training's event callback once the throughput is measured (nothing is written)."""


def measure_training(arch: str, backbone: str | None, options: dict, row: Row, s: Settings) -> None:
    from training import TrainConfig, train
    from training.events import StartEvent, StepEvent

    batch = s.batch
    while batch >= 2:
        marks: list[tuple[float, int]] = []
        started: list[StartEvent] = []

        def on_event(event, marks=marks, started=started) -> None:
            if isinstance(event, StartEvent):
                started.append(event)
            if not isinstance(event, StepEvent):
                return
            synchronize(s.device)
            marks.append((time.perf_counter(), event.iteration))
            measured = len(marks) - 1 - TRAIN_WARMUP_STEPS
            if measured >= MIN_RUNS and (marks[-1][0] - marks[TRAIN_WARMUP_STEPS][0] >= s.train_budget
                                         or time.perf_counter() > s.deadline):
                raise _Measured

        with tempfile.TemporaryDirectory(prefix="segassist-gpu-check-") as out:
            cfg = TrainConfig(images=s.data / "images", labels=s.data / "labels", out=Path(out) / "m.safetensors",
                              classes=CLASSES, arch=arch, backbone=backbone, model_options=options,
                              iterations=10**6, batch_size=batch, crop_size=s.crop, device=str(s.device),
                              precision="auto", log_interval=1, checkpoint_interval=10**9, bn_images=0,
                              workers=0 if s.device.type == "cpu" else min(8, os.cpu_count() or 1))
            free_memory(s.device)
            reset_peak(s.device)
            try:
                train(cfg, on_event=on_event)
            except _Measured:
                pass
            except torch.cuda.OutOfMemoryError:
                row.notes.append(f"training batch {batch}: out of memory")
                batch //= 2
                continue
        (t0, i0), (t1, i1) = marks[TRAIN_WARMUP_STEPS], marks[-1]
        precision = started[0].precision if started else "?"
        row.train = f"{(i1 - i0) * batch / (t1 - t0):.3g} ({precision}, batch {batch})"
        row.train_peak_mib = peak_mib(s.device)
        free_memory(s.device)
        return
    row.train = "out of memory"


def measure_onnx(model: engine.SegModel, row: Row, s: Settings, folder: Path) -> None:
    import onnxruntime

    if s.device.type == "cuda" and not onnx_cuda_available():
        row.onnx = f"no CUDA provider ({onnxruntime.__version__})"
        return
    model = model.to("cpu", memory_format=torch.contiguous_format).float()
    path = engine.export_onnx(model, folder / f"{row.arch}-{row.kind}.onnx")
    predictor = engine.Predictor(path, device=s.device)
    image = random_image(s.size, s.size)
    row.onnx = f"{per_second(lambda: predictor.predict(image), s):.3g}"
    path.unlink()


def measure(arch: str, kind: str, s: Settings, folder: Path) -> Row:
    cls = architecture_class(arch)
    if kind == "test":
        options = dict(cls.test_config)
        backbone = options.pop("backbone")
    else:
        backbone, options = (cls.small_backbones[0] if kind == "small" else cls.default_backbone), {}
    row = Row(arch, backbone, kind)
    torch.manual_seed(0)
    model = engine.create_model(arch, NUM_CLASSES, backbone=backbone, **options)
    row.params_m = sum(p.numel() for p in model.parameters()) / 1e6
    onnx_wanted = s.onnx == "all" or (s.onnx == "small" and kind != "paper")
    steps: list[tuple[str, Callable[[], None]]] = []
    if onnx_wanted:  # first, while the model is on the CPU in fp32
        steps.append(("onnx", lambda: measure_onnx(model, row, s, folder)))
    elif s.onnx != "off":
        row.onnx = "(--onnx-all)"
    steps += [("inference", lambda: measure_inference(model, row, s)),
              ("training", lambda: measure_training(arch, backbone, options, row, s))]
    for name, step in steps:
        if time.perf_counter() > s.deadline:
            row.notes.append(f"{name} skipped (time)")
            continue
        try:
            step()
        except Exception as exc:  # one failing figure is reported in its row; the others are still measured
            row.notes.append(f"{name} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        free_memory(s.device)
    return row


def write_training_data(folder: Path, crop: int, n: int) -> Path:
    """`n` synthetic labelled images a little larger than the crop, under `folder/images` and `folder/labels`."""
    from resources.synthetic import make_shapes

    for i, (image, labels) in enumerate(make_shapes(n, crop + crop // 4, seed=0, classes=CLASSES)):
        engine.write_image(folder / "images" / f"{i:03d}.png", image)
        engine.write_label(folder / "labels" / f"{i:03d}.png", labels, engine.as_classes(CLASSES))
    return folder


def fmt(value: float) -> str:
    if value != value:  # nan
        return "-"
    return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def table(rows: list[Row], s: Settings) -> str:
    precs = precisions(s.device)
    names = [f"{s.size}x{s.size}", f"{s.big[0]}x{s.big[1]}"]
    headers = ["architecture", "backbone", "params (M)"]
    headers += [f"{n} {p} img/s" for n in names for p in precs]
    headers += [f"peak MiB {names[1]} {resolve_precision('auto', s.device)}", "training crops/s",
                "peak MiB training", f"ONNX Runtime {names[0]} img/s", "notes"]
    body = []
    for r in rows:
        cells = [r.arch, f"{r.backbone} ({r.kind})", fmt(r.params_m)]
        cells += [fmt(r.infer.get((n, p), math.nan)) for n in names for p in precs]
        cells += [fmt(r.infer_peak_mib), r.train, fmt(r.train_peak_mib), r.onnx, "; ".join(r.notes) or ""]
        body.append(cells)
    return markdown_table(headers, body)


def describe(device: torch.device) -> str:
    import onnxruntime

    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        what = f"{props.name} ({props.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}"
    else:
        what = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return (f"{what}; torch {torch.__version__}, onnxruntime {onnxruntime.__version__} "
            f"({', '.join(onnxruntime.get_available_providers())}), Python {platform.python_version()}")


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    parser.add_argument("--archs", default=",".join(engine.list_architectures()))
    parser.add_argument("--small-only", action="store_true", help="leave out the papers' backbones")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: timm's test_* backbones, small images and crops, short budgets, no ONNX")
    parser.add_argument("--budget", type=float, help="seconds per timed inference figure (default 1; quick 0.05)")
    parser.add_argument("--train-budget", type=float, help="seconds of timed training steps (default 4)")
    parser.add_argument("--batch", type=int, help="training batch (default 8; halved until it fits)")
    parser.add_argument("--onnx", action=argparse.BooleanOptionalAction, default=None,
                        help="ONNX Runtime column (default: on, off with --quick)")
    parser.add_argument("--onnx-all", action="store_true", help="the ONNX column for the paper backbones too")
    parser.add_argument("--max-minutes", type=float, default=7.5, help="stop measuring after this long")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    s = Settings(device=device, quick=args.quick)
    if args.quick:
        s.size, s.big, s.tile, s.crop, s.batch = 64, (96, 192), 64, 64, 2
        s.budget, s.train_budget, s.warmup = 0.05, 0.05, 1
    s.budget = args.budget if args.budget is not None else s.budget
    s.train_budget = args.train_budget if args.train_budget is not None else s.train_budget
    s.batch = args.batch or s.batch
    onnx = args.onnx if args.onnx is not None else not args.quick
    s.onnx = "off" if not onnx else ("all" if args.onnx_all else "small")
    start = time.perf_counter()
    s.deadline = start + 60 * args.max_minutes
    kinds = ["test"] if args.quick else (["small"] if args.small_only else ["small", "paper"])
    rows = []
    print(f"{describe(device)}\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="segassist-gpu-check-") as tmp:
        folder = Path(tmp)
        s.data = write_training_data(folder / "data", s.crop, n=2 * s.batch)
        for arch in args.archs.split(","):
            for kind in kinds:
                if time.perf_counter() > s.deadline:
                    rows.append(Row(arch, "-", kind, notes=["skipped (time)"]))
                    continue
                t = time.perf_counter()
                rows.append(measure(arch, kind, s, folder))
                free_memory(device)
                print(f"  {arch} / {rows[-1].backbone}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    print(f"Predictor.predict on random uint8 images ({NUM_CLASSES} classes; {s.big[0]}x{s.big[1]} in {s.tile} "
          f"windows, a third overlapping); training.train at crop {s.crop} on synthetic images; {s.budget:g} s "
          f"per inference figure, {s.train_budget:g} s of training steps, after warm-up; peak memory includes "
          f"the weights; wall time {time.perf_counter() - start:.0f} s\n")
    print(table(rows, s))
    return rows


if __name__ == "__main__":
    main()
