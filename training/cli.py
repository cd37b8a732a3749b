"""`segassist-train` / `python -m training`: train or fine-tune a model from folders of images and labels.

With `--events -`, stdout carries only JSON lines (one event each); human progress goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from training.arguments import UsageError
from training.config import TrainConfig
from training.events import ErrorEvent, Event
from training.loop import train

DESCRIPTION = ("Train or fine-tune a segmentation model on labelled images. Images and labels are paired by file "
               "stem; labels are single-channel PNGs of class indices, 255 = not labelled.")


def build_parser() -> argparse.ArgumentParser:
    """`TrainConfig`'s flags (see `training.arguments`) and `--events`."""
    p = TrainConfig.argument_parser(prog="segassist-train", description=DESCRIPTION)
    p.add_argument("--events", help="write events as JSON lines to this file, or '-' for stdout")
    return p


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
        n = len(d.get("val_names") or [])
        score = ""
        if d.get("miou") is not None:
            parent = f" (init model {d['parent_miou']:.4f})" if d.get("parent_miou") is not None else ""
            score = f"; mIoU {d['miou']:.4f}{parent} on {n} validation images"
        elif n:
            score = f"; {n} validation image: not measurable"
        return (f"{how} at iteration {d['iteration']} after {_duration(d['wall_time_s'])}: {d['model_path']}"
                f"{score}{best}")
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
            cfg = TrainConfig.from_namespace(build_parser().parse_args(argv))
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
