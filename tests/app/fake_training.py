"""A stand-in for `python -m training --events -` that prints the documented JSON lines.

Usage: fake_training.py MODE OUT [...]; MODE is ok, error, crash, garbage or slow (runs until SIGTERM)."""

import json
import signal
import sys
import time


def emit(**event):
    print(json.dumps(event), flush=True)


def main() -> int:
    mode, out = sys.argv[1], sys.argv[2]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    iters = 4
    emit(event="start", iterations=iters, train_images=3, val_images=1, skipped_images=0, arch="deeplabv3plus",
         backbone="test_resnet", classes=["a", "b"], device="cpu", precision="fp32")
    emit(event="validation", iteration=0, miou=0.25, pixel_accuracy=0.5, per_class_iou=[0.2, 0.3], confusion=[])
    print("this line is not an event", flush=True)
    print("warming up", file=sys.stderr, flush=True)
    i = 0
    while i < iters or mode == "slow":
        i += 1
        emit(event="step", iteration=i, iterations=iters, loss=1.0 / i, lr=0.01, elapsed_s=0.1 * i,
             eta_s=0.1 * (iters - i), images_per_s=10.0)
        if mode == "crash" and i == 2:
            print("Traceback: something broke", file=sys.stderr, flush=True)
            sys.stdout.write('{"event": "step", "iteration"')  # a half-written line, then death
            sys.stdout.flush()
            return 3
        if mode == "error" and i == 2:
            emit(event="error", message="labels/b.png: not a readable label image")
            return 2
        if mode == "slow":
            time.sleep(0.05)
            if stop:
                break
    emit(event="validation", iteration=i, miou=0.75, pixel_accuracy=0.9, per_class_iou=[0.7, 0.8], confusion=[])
    emit(event="checkpoint", iteration=i, path=out)
    emit(event="done", iteration=i, model_path=out, best_path=out, best_miou=0.75, last_miou=0.75, wall_time_s=0.4,
         stopped=bool(stop))
    return 0


if __name__ == "__main__":
    sys.exit(main())
