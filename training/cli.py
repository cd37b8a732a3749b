"""`segassist-train` / `python -m training`: train or fine-tune a model from folders of images and labels.

With `--events -`, stdout carries only JSON lines (one event each); human progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from engine import as_classes, list_architectures
from training.config import OPTIMIZERS, PRECISIONS, TrainConfig
from training.events import ErrorEvent, Event
from training.loop import train


class UsageError(ValueError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="segassist-train", description="Train or fine-tune a segmentation model on labelled images. "
                "Images and labels are paired by file stem; labels are single-channel PNGs of class indices, "
                "255 = not labelled.")
    data = p.add_argument_group("data")
    data.add_argument("--images", type=Path, required=True, help="folder of training images")
    data.add_argument("--labels", type=Path, required=True, help="folder of label PNGs named like the images")
    data.add_argument("--classes", help="comma-separated class names, or a JSON file: a list of "
                      "{\"name\", \"color\"} (or an object with such a \"classes\" list); default: the --init "
                      "model's classes")
    data.add_argument("--val-images", type=Path, help="folder of validation images")
    data.add_argument("--val-labels", type=Path, help="folder of validation labels")
    data.add_argument("--val-fraction", type=float, default=0.0,
                      help="without --val-images, hold out this fraction of the labelled images for validation "
                           "(at least 2 images; fewer labelled images: no validation)")
    data.add_argument("--val-names", help="validation images among --images, excluded from training: "
                      "comma-separated file names (or stems), or a file with one name per line; with --init "
                      "the init model is scored on the same images first")
    model = p.add_argument_group("model")
    model.add_argument("--arch", help=f"architecture: {', '.join(list_architectures())} (default deeplabv3plus, "
                       f"or the --init model's)")
    model.add_argument("--backbone", help="timm backbone name (default: the architecture's paper backbone)")
    model.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="an architecture option, e.g. --option output_stride=8 (repeatable)")
    model.add_argument("--init", type=Path, help="fine-tune from this model file (its classes are kept; "
                       "--classes may add new ones after them)")
    model.add_argument("--pretrained", help="backbone weights for a new model: a local .safetensors/.pth "
                       "file, or 'timm' to download timm's (needs the network)")
    model.add_argument("--freeze-backbone", action="store_true", help="train the heads only (very few labels)")
    sched = p.add_argument_group("schedule")
    sched.add_argument("--iters", type=int, default=1000, help="iterations (default 1000)")
    sched.add_argument("--batch", type=int, default=8, help="crops per iteration and process (default 8)")
    sched.add_argument("--crop", type=int, default=512, help="crop size in pixels (default 512)")
    sched.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    sched.add_argument("--lr", type=float, help="base learning rate (default: the architecture's paper value)")
    sched.add_argument("--weight-decay", type=float)
    sched.add_argument("--head-lr-mult", type=float, help="learning-rate factor of everything but the backbone")
    sched.add_argument("--warmup", type=int, help="linear warm-up iterations")
    sched.add_argument("--grad-clip", type=float, default=10.0, help="gradient norm clip, 0 = off (default 10)")
    run = p.add_argument_group("run")
    run.add_argument("--out", type=Path, required=True, help="output model file (.safetensors)")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    run.add_argument("--precision", choices=PRECISIONS, default="auto",
                     help="auto: bf16 where the device runs it natively, else fp32 (fp16 on older GPUs)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--workers", type=int, help="data loader processes (default 0 on CPU, 4 per GPU)")
    run.add_argument("--resume", action="store_true", help="continue from the checkpoint beside --out")
    run.add_argument("--events", help="write events as JSON lines to this file, or '-' for stdout")
    run.add_argument("--log-interval", type=int, default=10, help="iterations between step events")
    run.add_argument("--val-interval", type=int, help="iterations between validations (default: a fifth)")
    run.add_argument("--bn-images", type=int, default=64,
                     help="training images whose whole views re-estimate BatchNorm statistics before each "
                          "validation and before the model is written; 0 keeps the running ones (default 64)")
    run.add_argument("--checkpoint-interval", type=int, help="iterations between checkpoints (default: a tenth)")
    return p


def parse_classes(value: str):
    """Class names from `a,b,c` or from a JSON file."""
    path = Path(value)
    if value.endswith(".json") or path.is_file():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"{path}: cannot read the classes ({exc})") from exc
        items = doc.get("classes") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise UsageError(f"{path}: expected a list of classes (or an object with a \"classes\" list)")
        try:
            return as_classes(items)
        except ValueError as exc:
            raise UsageError(f"{path}: {exc}") from exc
    return as_classes(n.strip() for n in value.split(","))


def parse_names(value: str) -> tuple[str, ...]:
    """Image names from `a.png,b.png` or from a file of one name per line."""
    path = Path(value)
    if path.is_file():
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read the validation names ({exc})") from exc
        return tuple(n.strip() for n in lines if n.strip())
    return tuple(n.strip() for n in value.split(",") if n.strip())


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    options = {}
    for item in args.option:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--option {item!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    pretrained = args.pretrained or False
    if pretrained == "timm":
        pretrained = True
    return TrainConfig(
        images=args.images, labels=args.labels, out=args.out,
        classes=parse_classes(args.classes) if args.classes else None,
        val_images=args.val_images, val_labels=args.val_labels, val_fraction=args.val_fraction,
        val_names=parse_names(args.val_names) if args.val_names else (),
        arch=args.arch, backbone=args.backbone, model_options=options, init=args.init, pretrained=pretrained,
        freeze_backbone=args.freeze_backbone, iterations=args.iters, batch_size=args.batch, crop_size=args.crop,
        optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay, head_lr_mult=args.head_lr_mult,
        warmup_iters=args.warmup, grad_clip=args.grad_clip or None, device=args.device, precision=args.precision,
        seed=args.seed, workers=args.workers, resume=args.resume, log_interval=args.log_interval,
        val_interval=args.val_interval, checkpoint_interval=args.checkpoint_interval, bn_images=args.bn_images,
    )


class EventWriter:
    """Events as JSON lines to a stream (flushed each), and a human line for each to stderr."""

    def __init__(self, stream=None):
        self.stream, self.errors = stream, 0

    def __call__(self, event: Event) -> None:
        if self.stream is not None:
            self.stream.write(event.to_json() + "\n")
            self.stream.flush()
        self.errors += event.kind == "error"
        print(describe(event), file=sys.stderr, flush=True)


def describe(event: Event) -> str:
    """One line for a person."""
    d = event.to_dict()
    kind = d["event"]
    if kind == "start":
        resumed = f", resuming at {d['start_iteration']}" if d["start_iteration"] else ""
        return (f"training {d['arch']} ({d['backbone']}) on {d['train_images']} images ({d['val_images']} for "
                f"validation, {d['skipped_images']} skipped), {d['iterations']} iterations, {d['device']} "
                f"{d['precision']}{resumed}; classes: {', '.join(d['classes'])}")
    if kind == "step":
        return (f"iter {d['iteration']:>6}/{d['iterations']}  loss {d['loss']:.4f}  lr {d['lr']:.2e}  "
                f"{d['images_per_s']:.1f} img/s  eta {_duration(d['eta_s'])}")
    if kind == "validation":
        iou = " ".join("-" if v is None else f"{v:.3f}" for v in d["per_class_iou"])
        miou = "n/a" if d["miou"] is None else f"{d['miou']:.4f}"
        return f"validation @ {d['iteration']}: mIoU {miou}  pixel accuracy {d['pixel_accuracy'] or 0:.4f}  IoU [{iou}]"
    if kind == "checkpoint":
        return f"checkpoint @ {d['iteration']}: {d['path']}"
    if kind == "done":
        best = f", best mIoU {d['best_miou']:.4f} in {d['best_path']}" if d["best_miou"] is not None else ""
        how = "stopped" if d["stopped"] else "done"
        return f"{how} at iteration {d['iteration']} after {_duration(d['wall_time_s'])}: {d['model_path']}{best}"
    return f"error: {d.get('message')}"


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 done or stopped, 1 failed, 2 bad arguments)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    target = _events_target(argv)
    stdout = sys.stdout
    if target == "-":  # only events on stdout: anything else printed goes to stderr
        sys.stdout = sys.stderr
    writer = EventWriter(stdout if target == "-" else None)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    stop_requested = []

    def request_stop(signum, frame):
        if stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop_requested.append(signum)
        print("stop requested: finishing this iteration and writing the model", file=sys.stderr, flush=True)

    try:
        try:
            cfg = config_from_args(build_parser().parse_args(argv))
            if target not in (None, "-"):
                writer.stream = open(target, "a", encoding="utf-8")  # noqa: SIM115 (closed below)
        except (UsageError, ValueError, OSError) as exc:
            writer(ErrorEvent(str(exc)))
            return 2
        for s in handlers:
            signal.signal(s, request_stop)
        try:
            train(cfg, on_event=writer, should_stop=lambda: bool(stop_requested))
        except Exception as exc:
            if not writer.errors:
                writer(ErrorEvent(str(exc)))
            return 1
        return 0
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
        if writer.stream is not None and writer.stream is not stdout:
            writer.stream.close()
        sys.stdout = stdout


def _events_target(argv: list[str]) -> str | None:
    for i, a in enumerate(argv):
        if a == "--events" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--events="):
            return a.split("=", 1)[1]
    return None
