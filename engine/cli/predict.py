"""`segassist-predict MODEL IMAGE_OR_DIR... --out DIR`: label images with a model file or an ONNX file."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.images import ImageReadError, is_image_file, list_images, read_image, write_image, write_label
from engine.model_file import ModelFileError
from engine.precision import PRECISIONS
from engine.predictor import Prediction, Predictor


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segassist-predict",
        description="Predict labels for images; writes one palette PNG per image, coloured like the model's "
                    "classes, named after the image.",
    )
    parser.add_argument("model", type=Path, help="a SegAssist model file (.safetensors) or an exported .onnx file")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE_OR_DIR",
                        help="image files, or folders whose images are all predicted")
    parser.add_argument("--out", type=Path, required=True, help="folder for the label PNGs")
    parser.add_argument("--tile", type=int, help="sliding-window size in pixels (default: whole images up to "
                                                 "about 4 megapixels)")
    parser.add_argument("--overlap", type=float, default=1 / 3, help="window overlap, a fraction (default 1/3)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--backend", choices=("torch", "onnx"),
                        help="default: onnx for .onnx files, torch otherwise")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--batch-size", type=int, help="windows per network call")
    parser.add_argument("--tta", action="store_true", help="average over flips and scales 0.5-1.75")
    parser.add_argument("--save-confidence", action="store_true",
                        help="also write <name>_confidence.png (8-bit, 255 = certain)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def collect_images(inputs: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The image files named or found directly inside named folders; and inputs that are neither."""
    images, problems = [], []
    for item in inputs:
        if item.is_dir():
            found = list_images(item)
            if not found:
                problems.append((item, "a folder without images"))
            images.extend(found)
        elif item.is_file():
            if is_image_file(item):
                images.append(item)
            else:
                problems.append((item, "not an image file (by its suffix)"))
        else:
            problems.append((item, "no such file or folder"))
    return images, problems


def output_names(images: list[Path]) -> list[str]:
    """Output names by stem; images sharing a stem get their suffix (and if need be a number) added."""
    stems = [p.stem for p in images]
    names, taken = [], set()
    for path, stem in zip(images, stems, strict=True):
        name = stem if stems.count(stem) == 1 else f"{stem}_{path.suffix.lstrip('.').lower()}"
        base, n = name, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        names.append(name)
    return names


def write_outputs(out: Path, name: str, prediction: Prediction, predictor: Predictor, confidence: bool) -> None:
    if prediction.labels.dtype == np.uint8:
        write_label(out / f"{name}.png", prediction.labels, predictor.classes)
    else:  # more than 255 classes: a 16-bit grey PNG of class indices
        write_image(out / f"{name}.png", prediction.labels)
    if confidence:
        write_image(out / f"{name}_confidence.png", np.round(prediction.confidence * 255).astype(np.uint8))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        predictor = Predictor(args.model, device=args.device, backend=args.backend, tile=args.tile,
                              overlap=args.overlap, tta=args.tta, precision=args.precision,
                              batch_size=args.batch_size)
    except (ModelFileError, ValueError, OSError) as exc:
        print(f"segassist-predict: error: {exc}", file=sys.stderr)
        return 2
    images, failures = collect_images(args.inputs)
    for path, problem in failures:
        print(f"segassist-predict: {path}: {problem}", file=sys.stderr)
    names = output_names(images)
    start = time.perf_counter()
    done = tiles = 0
    with tqdm(total=len(images), unit="image", file=sys.stderr, disable=args.quiet, dynamic_ncols=True) as bar:
        for path, name in zip(images, names, strict=True):
            bar.set_postfix_str(path.name, refresh=False)
            try:
                prediction = predictor.predict(read_image(path))
                write_outputs(args.out, name, prediction, predictor, args.save_confidence)
            except (ImageReadError, ValueError, OSError, RuntimeError) as exc:
                message = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
                tqdm.write(f"segassist-predict: skipped {message}", file=sys.stderr)
                failures.append((path, str(exc)))
            else:
                done += 1
                tiles += prediction.tiles
            bar.update(1)
    seconds = time.perf_counter() - start
    print_summary(done + len(failures), done, failures, seconds, tiles, predictor, args.out)
    return 1 if failures or not images else 0


def print_summary(total: int, done: int, failures: list, seconds: float, tiles: int, predictor: Predictor,
                  out: Path) -> None:
    rows = [
        ("images", str(total)),
        ("predicted", str(done)),
        ("failed", str(len(failures))),
        ("seconds", f"{seconds:.2f}" + (f" ({seconds / done:.2f} per image)" if done else "")),
        ("windows", str(tiles)),
        ("device", f"{predictor.device} / {predictor.precision} / {predictor.backend}"),
        ("labels in", str(out)),
    ]
    for key, value in rows:
        print(f"{key:<10} {value}")
    for path, problem in failures:
        print(f"failed     {path}: {problem.removeprefix(f'{path}: ')}")


if __name__ == "__main__":
    sys.exit(main())
