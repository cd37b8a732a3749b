"""Which recipe and which inference make the best proposals from ImageNet weights, and at what cost: a table.

    python -m bench.pretrained_recipe --data ../shared/data/camvid-mini --out out/recipe \
        --setting sgd-0.01 --setting adamw-1e-4 --crop 128 --crop 192 --iters 300 --batch 8
    python -m bench.pretrained_recipe --out out/recipe --setting adamw-1e-3-enc0.1 --backbone efficientnet_lite1 \
        --inference plain --inference flip --inference x1.5

Each backbone (`--backbone`, repeatable: `efficientnet_lite0/1/2` have installed ImageNet weights) and each
setting is trained once; each model is then scored under each inference (`--inference`, repeatable): `plain`
(the app's proposals today), `flip` (the mean of the image and its mirror), `x1.25`/`x1.5` (the image
enlarged before the network), `x1-1.5-flip` (both scales, both ways). Beside the scores: the median seconds
per image of that inference on this CPU (the cost a person waits for a proposal).

Each setting trains DeepLabV3+ / EfficientNet-Lite0 from the installed ImageNet weights through the real
training command line (`python -m training`, a child process) on the data set's `train/` images, then
`engine.Predictor` labels its `val/` images, scored against their truth: mIoU, pixel accuracy, and the
effort of correcting the proposals over drawing them by hand (`app.core.loop.effort.effort`, summed boundary
pixels, `--min-region` 25, wrong pixels within `--tolerance` px of agreement forgiven; and strictly, tolerance 0).

Every run writes `<out>/<name>.json` (its settings, wall time and scores) beside its model and log, and
a run whose JSON exists is not trained again: several invocations with one `--out` (in parallel, one
setting each) fill one table, printed at the end of each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.predictor import FLIP_ONLY

REPO_ROOT = Path(__file__).resolve().parents[1]
CAMVID_CLASSES = "sky,building,pole,road,sidewalk,tree,sign/symbol,fence,car,pedestrian,bicyclist"
MIN_REGION = 25


@dataclass(frozen=True)
class Setting:
    """An optimiser recipe: the training command line's flags beyond data, model and schedule length."""

    name: str
    flags: tuple[str, ...]
    text: str  # for the table


SETTINGS = {s.name: s for s in (
    Setting("sgd-0.01", ("--optimizer", "sgd", "--lr", "0.01"), "SGD 0.01 (the from-scratch recipe)"),
    Setting("sgd-0.003", ("--optimizer", "sgd", "--lr", "0.003"), "SGD 0.003"),
    Setting("adamw-1e-4", ("--optimizer", "adamw", "--lr", "1e-4"), "AdamW 1e-4"),
    Setting("adamw-3e-4", ("--optimizer", "adamw", "--lr", "3e-4"), "AdamW 3e-4"),
    Setting("adamw-1e-3-enc0.1", ("--optimizer", "adamw", "--lr", "1e-4", "--head-lr-mult", "10"),
            "AdamW 1e-3, encoder 1e-4"),
    Setting("adamw-3e-4-enc0.1", ("--optimizer", "adamw", "--lr", "3e-5", "--head-lr-mult", "10"),
            "AdamW 3e-4, encoder 3e-5"),
)}


# Inference variants: the Predictor's test-time augmentation settings.
INFERENCES = {
    "plain": {"tta": False},
    "flip": {"tta": True, **FLIP_ONLY},
    "x1.25": {"tta": True, "tta_scales": (1.25,), "tta_flip": False},
    "x1.5": {"tta": True, "tta_scales": (1.5,), "tta_flip": False},
    "x1-1.5-flip": {"tta": True, "tta_scales": (1.0, 1.5), "tta_flip": True},
}


def run_name(setting: str, crop: int, iters: int, batch: int, backbone: str = "efficientnet_lite0") -> str:
    return f"{backbone}-{setting}-crop{crop}-it{iters}-b{batch}"


def train(out: Path, name: str, setting: Setting, data: Path, *, crop: int, iters: int, batch: int,
          backbone: str, classes: str) -> float:
    """Train one model through the command line; its wall time in seconds."""
    cmd = [sys.executable, "-m", "training", "--images", str(data / "train/images"),
           "--labels", str(data / "train/labels"), "--classes", classes, "--arch", "deeplabv3plus",
           "--backbone", backbone, "--pretrained", "imagenet", "--crop", str(crop), "--iters", str(iters),
           "--batch", str(batch), "--log-interval", str(max(1, iters // 20)), *setting.flags,
           "--out", str(out / f"{name}.safetensors")]
    path = os.environ.get("PYTHONPATH", "")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + (os.pathsep + path if path else "")}
    t = time.perf_counter()
    with open(out / f"{name}.log", "w", encoding="utf-8") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"training {name} failed with code {proc.returncode}; see {out / f'{name}.log'}")
    return time.perf_counter() - t


def score(model: Path, data: Path, *, tolerance: int, inference: str = "plain") -> dict:
    """mIoU, pixel accuracy, effort R (at `tolerance` and strict) of `model`'s proposals on the `val/` images
    under `inference`, and the median seconds one image took."""
    from app.core.loop.effort import effort
    from engine import Predictor
    from engine.images import list_images, read_label
    from training.metrics import scores

    predictor = Predictor(model, device="cpu", **INFERENCES[inference])
    k = predictor.num_classes
    confusion, assisted, strict, manual, seconds = None, 0, 0, 0, []
    for image in list_images(data / "val/images"):
        truth = read_label(data / "val/labels" / f"{image.stem}.png")
        t = time.perf_counter()
        labels = predictor.predict(image).labels
        seconds.append(time.perf_counter() - t)
        valid = truth != 255
        cm = np.bincount(truth[valid].astype(np.int64) * k + labels[valid], minlength=k * k).reshape(k, k)
        confusion = cm if confusion is None else confusion + cm
        assisted += effort(truth, labels, min_region=MIN_REGION, tolerance=tolerance).boundary_px
        strict += effort(truth, labels, min_region=MIN_REGION, tolerance=0).boundary_px
        manual += effort(truth, None, min_region=MIN_REGION).boundary_px
    s = scores(confusion)
    return {"miou": s["miou"], "pixel_accuracy": s["pixel_accuracy"], "R": assisted / manual,
            "R_strict": strict / manual, "tolerance": tolerance,
            "s_per_image": float(np.median(seconds))}


def table(out: Path) -> list[str]:
    rows = []
    for path in sorted(out.glob("*.json")):
        r = json.loads(path.read_text())
        variants = r.get("inference") or {"plain": r}  # (runs recorded before inference variants)
        for inference, v in variants.items():
            strict = f"{v['R_strict']:.3f}" if "R_strict" in v else "-"
            per_image = f"{v['s_per_image']:.2f}" if "s_per_image" in v else "-"
            rows.append(f"| {r.get('backbone', 'efficientnet_lite0')} | {r['text']} | {r['crop']} | {r['iters']} | "
                        f"{r['batch']} | {inference} | {v['miou']:.3f} | {v['pixel_accuracy']:.3f} | "
                        f"{v['R']:.3f} (t={v['tolerance']}) | {strict} | {r['wall_s'] / 60:.1f} | {per_image} |")
    head = ["| backbone | setting | crop | iterations | batch | inference | mIoU | pixel acc | R | R strict | "
            "training min | s per image |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    return head + rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/camvid-mini"),
                   help="a folder with train/{images,labels} and val/{images,labels}")
    p.add_argument("--classes", default=CAMVID_CLASSES)
    p.add_argument("--backbone", action="append", help="repeatable (default efficientnet_lite0)")
    p.add_argument("--setting", action="append", choices=sorted(SETTINGS), help="repeatable (default: all)")
    p.add_argument("--crop", type=int, action="append", help="repeatable (default 128)")
    p.add_argument("--iters", type=int, action="append", help="repeatable (default 300)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--inference", action="append", choices=sorted(INFERENCES), help="repeatable (default plain)")
    p.add_argument("--tolerance", type=int, default=2, help="boundary tolerance in px (default 2)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--table", action="store_true", help="only print the table of the runs in --out")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table:
        for d in ("train/images", "train/labels", "val/images", "val/labels"):
            if not (args.data / d).is_dir():
                p.error(f"{args.data / d}: no such folder")
        runs = [(b, s, c, i) for b in args.backbone or ["efficientnet_lite0"] for s in args.setting or sorted(SETTINGS)
                for c in args.crop or [128] for i in args.iters or [300]]
        for backbone, setting, crop, iters in runs:
            name = run_name(setting, crop, iters, args.batch, backbone)
            path = args.out / f"{name}.json"
            if path.exists():
                record = json.loads(path.read_text())
            else:
                wall = train(args.out, name, SETTINGS[setting], args.data, crop=crop, iters=iters,
                             batch=args.batch, backbone=backbone, classes=args.classes)
                record = {"setting": setting, "text": SETTINGS[setting].text, "crop": crop, "iters": iters,
                          "batch": args.batch, "backbone": backbone, "wall_s": wall, "inference": {}}
            for inference in args.inference or ["plain"]:
                if inference in record.setdefault("inference", {}):
                    continue
                result = score(args.out / f"{name}.safetensors", args.data, tolerance=args.tolerance,
                               inference=inference)
                record["inference"][inference] = result
                path.write_text(json.dumps(record, indent=1))
                print(f"{name} {inference}: {json.dumps(result)}", flush=True)
    print("\n".join(table(args.out)))


if __name__ == "__main__":
    main()
