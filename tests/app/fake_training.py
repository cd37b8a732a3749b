"""A stand-in for `python -m training ... --events -` that prints real `training.events` as JSON lines.

Usage: fake_training.py MODE <TrainConfig arguments> --events -; MODE is ok, error, crash, slow (runs
until SIGTERM) or gated (steps until the file `<out>.go` appears or SIGTERM comes, then writes a real
tiny model with the config's classes to the output file). The arguments are read with
`TrainConfig.from_args`, so the runner's command line is checked too; the events name the config's
output file, iterations and classes.
"""

import json
import signal
import sys
import time

from training.config import TrainConfig
from training.events import CheckpointEvent, DoneEvent, ErrorEvent, Event, StartEvent, StepEvent, ValidationEvent


def emit(event: Event) -> None:
    print(event.to_json(), flush=True)


def write_tiny_model(cfg: TrainConfig) -> None:
    """A real model file at the config's output path (what the app loads and records)."""
    import torch

    import engine

    torch.manual_seed(0)
    classes = [c.name for c in cfg.classes or ()] or ["background", "object"]
    model = engine.create_model("deeplabv3plus", len(classes), backbone="test_resnet", output_stride=8,
                                channels=16, c1_channels=8, aux_channels=8)
    engine.save_model(cfg.out, model, classes=classes)


def main() -> int:
    mode, argv = sys.argv[1], sys.argv[2:]
    if argv[-2:] != ["--events", "-"]:
        print(f"expected the arguments to end in --events -, got {argv}", file=sys.stderr)
        return 2
    cfg = TrainConfig.from_args(argv[:-2])
    out, iters = str(cfg.out), cfg.iterations
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    emit(StartEvent(iterations=iters, train_images=3, val_images=1, skipped_images=0, arch=cfg.arch or "deeplabv3plus",
                    backbone=cfg.backbone or "test_resnet", classes=[c.name for c in cfg.classes or ()],
                    device="cpu", precision="fp32"))
    before = ValidationEvent(iteration=0, miou=0.25, pixel_accuracy=0.5, per_class_iou=[0.2, 0.3], confusion=[])
    print(json.dumps({**before.to_dict(), "field_of_a_newer_trainer": 1}), flush=True)  # read, the key ignored
    print("this line is not an event", flush=True)
    print('{"event": "epoch", "iteration": 0}', flush=True)  # an event kind this version does not know
    print("warming up", file=sys.stderr, flush=True)
    i = 0
    gate = cfg.out.with_name(cfg.out.name + ".go")
    while i < iters or mode in ("slow", "gated"):
        i += 1
        emit(StepEvent(iteration=i, iterations=iters, loss=1.0 / i, lr=0.01, elapsed_s=0.1 * i, eta_s=0.1 * (iters - i),
                       images_per_s=10.0))
        if mode == "crash" and i == 2:
            print("Traceback: something broke", file=sys.stderr, flush=True)
            sys.stdout.write('{"event": "step", "iteration"')  # a half-written line, then death
            sys.stdout.flush()
            return 3
        if mode == "error" and i == 2:
            emit(ErrorEvent("labels/b.png: not a readable label image"))
            return 2
        if mode in ("slow", "gated"):
            time.sleep(0.05)
            if stop or (mode == "gated" and gate.exists()):
                break
    if mode == "gated":
        write_tiny_model(cfg)
    emit(ValidationEvent(iteration=i, miou=0.75, pixel_accuracy=0.9, per_class_iou=[0.7, 0.8], confusion=[]))
    emit(CheckpointEvent(iteration=i, path=out))
    emit(DoneEvent(iteration=i, model_path=out, best_path=out, best_miou=0.75, last_miou=0.75, wall_time_s=0.4,
                   stopped=bool(stop)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
