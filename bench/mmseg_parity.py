"""SegAssist against mmsegmentation's own code: models built with mmseg 1.2.2's classes from its published
configs (shrunk: small widths, a test-sized ViT; random weights), saved as mmengine's runner saves them
(`state_dict` and `meta['cfg']` = the config's multi-line `pretty_text`), imported with `engine.import_mmseg`
and compared logit by logit at a multiple of 16 and at sizes that are not.

mmsegmentation is not a dependency of SegAssist. This benchmark runs where it can be imported, e.g.:

    pip install --target /tmp/mmseg mmsegmentation==1.2.2 mmengine mmcv-lite==2.1.0 (+ their pure-Python deps)
    PYTHONPATH=/tmp/mmseg python -m bench.mmseg_parity [--archs ...] [--sizes 64x64,50x70] [--runs 3]
        [--pad-rule crop]

mmcv-lite lacks mmcv's compiled ops; `mmcv.ops` is replaced by a module that only holds the pure-PyTorch
criss-cross attention (the one op these models use) before mmseg is imported.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import types
from pathlib import Path

import torch

from bench.timing import interleaved_seconds, table

NORM = dict(type="BN", requires_grad=True)
LN = dict(type="LN", eps=1e-6)
NUM_CLASSES = 5


def _resnet(os16: bool) -> dict:
    return dict(type="ResNetV1c", depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
                dilations=(1, 1, 1, 2) if os16 else (1, 1, 2, 4), strides=(1, 2, 2, 1) if os16 else (1, 2, 1, 1),
                norm_cfg=NORM, norm_eval=False, style="pytorch", contract_dilation=True)


def _fcn_aux(cin: int = 1024, channels: int = 16) -> dict:
    return dict(type="FCNHead", in_channels=cin, in_index=2, channels=channels, num_convs=1, concat_input=False,
                dropout_ratio=0.1, num_classes=NUM_CLASSES, norm_cfg=NORM, align_corners=False)


def _vit(out_indices, *, with_cls_token=True, final_norm=False, interpolate_mode="bilinear") -> dict:
    # The shape of timm's test_vit: 64 wide, 6 blocks, 2 heads, MLP ratio 3; position embeddings for 64x64.
    return dict(type="VisionTransformer", img_size=(64, 64), patch_size=16, in_channels=3, embed_dims=64,
                num_layers=6, num_heads=2, mlp_ratio=3, out_indices=out_indices, drop_rate=0.0,
                drop_path_rate=0.0, with_cls_token=with_cls_token, final_norm=final_norm, norm_cfg=LN,
                interpolate_mode=interpolate_mode)


def _setr_up(in_index, num_convs, up_scale, kernel_size) -> dict:
    return dict(type="SETRUPHead", in_channels=64, channels=16, in_index=in_index, num_classes=NUM_CLASSES,
                dropout_ratio=0, norm_cfg=NORM, num_convs=num_convs, up_scale=up_scale, kernel_size=kernel_size,
                align_corners=False)


def model_configs() -> dict[str, dict]:
    """mmseg's published model configs per architecture, shrunk."""
    aspp = dict(type="DepthwiseSeparableASPPHead", in_channels=2048, in_index=3, channels=16, c1_in_channels=256,
                c1_channels=8, dropout_ratio=0.1, num_classes=NUM_CLASSES, norm_cfg=NORM, align_corners=False)
    return {
        "deeplabv3plus": dict(backbone=_resnet(False), decode_head=dict(aspp, dilations=(1, 12, 24, 36)),
                              auxiliary_head=_fcn_aux()),
        "deeplabv3plus_os16": dict(backbone=_resnet(True), decode_head=dict(aspp, dilations=(1, 6, 12, 18)),
                                   auxiliary_head=_fcn_aux()),
        "encnet": dict(backbone=_resnet(False), auxiliary_head=_fcn_aux(), decode_head=dict(
            type="EncHead", in_channels=[512, 1024, 2048], in_index=(1, 2, 3), channels=16, num_codes=4,
            use_se_loss=True, add_lateral=False, dropout_ratio=0.1, num_classes=NUM_CLASSES, norm_cfg=NORM,
            align_corners=False)),
        "ccnet": dict(backbone=_resnet(False), auxiliary_head=_fcn_aux(), decode_head=dict(
            type="CCHead", in_channels=2048, in_index=3, channels=16, recurrence=2, concat_input=True,
            dropout_ratio=0.1, num_classes=NUM_CLASSES, norm_cfg=NORM, align_corners=False)),
        "setr_naive": dict(backbone=_vit((1, 3, 4, 5)), decode_head=_setr_up(3, 1, 4, 1),
                           auxiliary_head=[_setr_up(i, 2, 4, 1) for i in range(3)]),
        "setr_pup": dict(backbone=_vit((1, 3, 4, 5)), decode_head=_setr_up(3, 4, 2, 3),
                         auxiliary_head=[_setr_up(i, 2, 4, 3) for i in range(4)]),
        "setr_mla": dict(
            backbone=_vit((1, 2, 3, 5), with_cls_token=False),
            neck=dict(type="MLANeck", in_channels=[64] * 4, out_channels=16, norm_cfg=NORM, act_cfg=dict(type="ReLU")),
            decode_head=dict(type="SETRMLAHead", in_channels=(16,) * 4, channels=32, in_index=(0, 1, 2, 3),
                             dropout_ratio=0, mla_channels=8, num_classes=NUM_CLASSES, norm_cfg=NORM,
                             align_corners=False),
            auxiliary_head=[dict(type="FCNHead", in_channels=16, channels=16, in_index=i, num_convs=0,
                                 concat_input=False, dropout_ratio=0, num_classes=NUM_CLASSES, kernel_size=1,
                                 norm_cfg=NORM, align_corners=False) for i in range(4)]),
        "segmenter_linear": dict(
            backbone=_vit((5,), final_norm=True, interpolate_mode="bicubic"),
            decode_head=dict(type="FCNHead", in_channels=64, channels=64, num_convs=0, dropout_ratio=0.0,
                             concat_input=False, num_classes=NUM_CLASSES)),
        "segmenter_mask": dict(
            backbone=_vit((5,), final_norm=True, interpolate_mode="bicubic"),
            decode_head=dict(type="SegmenterMaskTransformerHead", in_channels=64, channels=64,
                             num_classes=NUM_CLASSES, num_layers=2, num_heads=2, embed_dims=64, dropout_ratio=0.0)),
    }


def import_mmseg_package():
    """mmseg's model registry, with `mmcv.ops` reduced to the pure-PyTorch criss-cross attention."""
    import mmcv

    ops = types.ModuleType("mmcv.ops")
    ops.__path__ = [os.path.join(os.path.dirname(mmcv.__file__), "ops")]

    class Unavailable:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("this mmcv op needs mmcv's compiled extension")

    ops.__getattr__ = lambda name: Unavailable if not name.startswith("__") else (_ for _ in ()).throw(
        AttributeError(name))
    sys.modules["mmcv.ops"] = ops
    ops.CrissCrossAttention = importlib.import_module("mmcv.ops.cc_attention").CrissCrossAttention
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules()
    return MODELS


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Every parameter and BatchNorm statistic random (mmseg's init leaves BN at 0/1 and some tensors 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.dim() > 1:
                t.copy_(torch.randn(t.shape, generator=g) / max(1, t[0].numel()) ** 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.1 + (1.0 if name.endswith(".weight") else 0.0))


def save_like_mmengine(path: Path, model: torch.nn.Module, model_cfg: dict, mean, std) -> None:
    from mmengine.config import Config

    cfg = Config(dict(
        crop_size=(64, 64),
        data_preprocessor=dict(type="SegDataPreProcessor", mean=list(mean), std=list(std), bgr_to_rgb=True,
                               pad_val=0, seg_pad_val=255, size=(64, 64)),
        model=dict(type="EncoderDecoder", pretrained=None, **model_cfg),
    ))
    meta = {"cfg": cfg.pretty_text, "dataset_meta": {"classes": [f"c{i}" for i in range(NUM_CLASSES)]},
            "mmengine_version": "0.10.7", "seed": 0}
    torch.save({"meta": meta, "state_dict": model.state_dict()}, path)


def mmseg_logits(model, x: torch.Tensor) -> torch.Tensor:
    """mmseg's whole-image inference logits at the input size (`EncoderDecoder.encode_decode`)."""
    h, w = x.shape[-2:]
    metas = [dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w))] * x.shape[0]
    return model.encode_decode(x, metas)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default=",".join(model_configs()))
    parser.add_argument("--sizes", default="64x64,50x70,72x88")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--time-size", default="200x264", help="input size of the timing columns")
    parser.add_argument("--pad-rule", choices=("mmseg", "crop"), default=None,
                        help="override the imported models' pad rule (crop: SegAssist's native rule, to compare)")
    args = parser.parse_args(argv)
    import engine

    torch.manual_seed(0)
    models = import_mmseg_package()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    th, tw = (int(v) for v in args.time_size.split("x"))
    configs = model_configs()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        for arch in args.archs.split(","):
            cfg = configs[arch]
            theirs = models.build(dict(type="EncoderDecoder", **cfg)).eval()
            randomize(theirs, seed=1)
            half = arch.startswith("segmenter")
            mean, std = ((127.5,) * 3, (127.5,) * 3) if half else ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))
            path = Path(tmp) / f"{arch}.pth"
            save_like_mmengine(path, theirs, cfg, mean, std)
            try:
                ours = engine.import_mmseg(path).model.eval()
                ours.pad_rule = args.pad_rule or ours.pad_rule
            except engine.MMSegImportError as exc:
                for h, w in sizes:
                    rows.append([arch, f"{h}x{w}", "import fails", str(exc).split(": ", 1)[1][:60], "", ""])
                continue
            g = torch.Generator().manual_seed(2)
            for h, w in sizes:
                x = torch.randn(2, 3, h, w, generator=g)
                ref, got = mmseg_logits(theirs, x), ours(x)
                agree = (ref.argmax(1) == got.argmax(1)).float().mean().item()
                rows.append([arch, f"{h}x{w}", f"{100 * agree:.2f}%", f"{(ref - got).abs().max().item():.2e}", "", ""])
            x = torch.randn(1, 3, th, tw, generator=g)
            t = interleaved_seconds({"mmseg": lambda m=theirs, x=x: mmseg_logits(m, x),
                                     "ours": lambda m=ours, x=x: m(x)}, runs=args.runs)
            rows[-1][4:] = [f"{1000 * t['mmseg']:.0f}", f"{1000 * t['ours']:.0f}"]
    print(table(["architecture", "size", "argmax agreement", "max abs diff",
                 f"mmseg ms ({th}x{tw})", f"ours ms ({th}x{tw})"], rows))


if __name__ == "__main__":
    main()
