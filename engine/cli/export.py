"""`segassist-export MODEL --onnx OUT.onnx`: export a model file to ONNX and check it against torch."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engine.model_file import ModelFileError, load_model, read_model_metadata
from engine.onnx_export import export_onnx, onnx_relative_error

TOLERANCE = 1e-3
CHECK_SIZES = ((256, 256), (193, 321))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segassist-export",
        description="Export a SegAssist model file to one ONNX file (dynamic batch, height and width; the model "
                    "file's classes and normalisation in its metadata), then compare onnxruntime with torch.",
    )
    parser.add_argument("model", type=Path, help="a SegAssist model file (.safetensors)")
    parser.add_argument("--onnx", type=Path, required=True, metavar="OUT.onnx", help="the ONNX file to write")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE,
                        help=f"largest accepted relative error of onnxruntime against torch (default {TOLERANCE})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        loaded = load_model(args.model)
        doc = read_model_metadata(args.model)
    except ModelFileError as exc:
        print(f"segassist-export: error: {exc}", file=sys.stderr)
        return 2
    out: Path = args.onnx
    # Written beside the target and moved there only once it agrees with torch.
    unchecked = out.with_name(f".{out.name}.unchecked")
    try:
        export_onnx(loaded, unchecked)
        error = onnx_relative_error(loaded.model, unchecked, CHECK_SIZES)
        sizes = ", ".join(f"{h}x{w}" for h, w in CHECK_SIZES)
        print(f"onnxruntime vs torch: relative error {error:.2e} (batch 2 at {sizes}; tolerance {args.tolerance:g})")
        if not error <= args.tolerance:
            print(f"segassist-export: error: the exported network disagrees with torch ({error:.2e} > "
                  f"{args.tolerance:g}); {out} was not written", file=sys.stderr)
            return 1
        os.replace(unchecked, out)
    finally:
        unchecked.unlink(missing_ok=True)
    print(f"wrote {out} ({doc['config'].get('name')}, {len(loaded.classes)} classes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
