"""DeepLabV3+ multiply-adds with depthwise-separable against plain 3x3 convolutions in ASPP and decoder.

The paper (Chen et al., 2018, Table 5) reports 33-41% fewer multiply-adds for the whole network at
similar mIoU. Counted here by tracing one forward (no timing, so a busy machine does not matter).

    python -m bench.separable [--size 513]
"""

from __future__ import annotations

import argparse

import torch

import engine
from bench.timing import count_macs, table

SETTINGS = [
    ("xception65", 16, 256),  # the paper's setting
    ("resnet101c", 16, 256),
    ("resnet101c", 8, 256),
    ("resnet50c", 8, 512),  # mmsegmentation's R50-D8 setting
    ("mobilenetv3_large_100", 16, 256),
]


def macs(backbone: str, output_stride: int, channels: int, separable: bool, size: int) -> tuple[float, float]:
    """(whole network, ASPP + decoder) GMAC for one image."""
    model = engine.create_model("deeplabv3plus", 21, backbone=backbone, output_stride=output_stride,
                                channels=channels, separable=separable).eval()
    x = torch.randn(1, 3, size, size)
    total = count_macs(lambda: model(x))
    with torch.no_grad():
        feats = model.backbone(x)
    low, high = feats[model.spec.low], feats[model.spec.last]
    head = count_macs(lambda: model.decode_head(low, high))
    return total / 1e9, head / 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=513)
    args = parser.parse_args(argv)
    rows = []
    for backbone, os_, channels in SETTINGS:
        sep_total, sep_head = macs(backbone, os_, channels, True, args.size)
        plain_total, plain_head = macs(backbone, os_, channels, False, args.size)
        rows.append([backbone, os_, channels, plain_total, sep_total, f"{100 * (1 - sep_total / plain_total):.1f}%",
                     plain_head, sep_head, f"{100 * (1 - sep_head / plain_head):.1f}%"])
    print(f"DeepLabV3+ at {args.size}x{args.size}, 21 classes, GMAC per image (inference forward)\n")
    print(table(["backbone", "OS", "width", "plain", "separable", "fewer", "head plain", "head separable",
                 "head fewer"], rows))
    print("\npaper (Table 5): separable convolutions cut the whole network's multiply-adds by 33-41%")


if __name__ == "__main__":
    main()
