"""Importing mmsegmentation checkpoints.

Checkpoints are built here from a description of mmsegmentation's own layout (module names and shapes as
mmseg's modules create them), with random tensors, and config text in the layouts mmseg 0.x and mmengine store.
A reference model is filled from the same tensors through this file's own reading of the layout; the imported
model must compute exactly what it computes, and at sizes that are not a multiple of the patch size what mmseg
computes: the input padded bottom-right, the head's logits resized straight to the input size (mmseg's
`EncoderDecoder` resizes the decode head's output to the image shape; its ViT pads patches at the corner).
(bench/mmseg_parity.py compares with mmseg's own modules where mmseg can be installed.)
"""

import builtins
import json
import math
import os
import re
import sys
import types

import pytest
import torch
from safetensors.torch import save_file

import engine

# ---------------------------------------------------------------------------------------------- mmseg's layout


def bn(prefix, c):
    return {f"{prefix}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")} | {
        f"{prefix}.num_batches_tracked": ()
    }


def conv_module(prefix, cin, cout, k, groups=1):
    """mmcv's ConvModule with BN: `conv` (no bias) and `bn`."""
    return {f"{prefix}.conv.weight": (cout, cin // groups, k, k)} | bn(f"{prefix}.bn", cout)


def separable(prefix, cin, cout):
    """mmcv's DepthwiseSeparableConvModule (3x3 depthwise, 1x1 pointwise)."""
    return conv_module(f"{prefix}.depthwise_conv", cin, cin, 3, groups=cin) | conv_module(
        f"{prefix}.pointwise_conv", cin, cout, 1
    )


def conv_seg(prefix, cin, num_classes, k=1):
    return {f"{prefix}.conv_seg.weight": (num_classes, cin, k, k), f"{prefix}.conv_seg.bias": (num_classes,)}


def resnet_v1c(blocks=(3, 4, 6, 3)):
    """mmseg's ResNetV1c: deep stem (32, 32, 64) as `stem` Sequential, bottleneck stages `layer1`..`layer4`."""
    shapes = {"backbone.stem.0.weight": (32, 3, 3, 3), "backbone.stem.3.weight": (32, 32, 3, 3),
              "backbone.stem.6.weight": (64, 32, 3, 3)}
    shapes |= bn("backbone.stem.1", 32) | bn("backbone.stem.4", 32) | bn("backbone.stem.7", 64)
    inplanes = 64
    for stage, n in enumerate(blocks):
        planes = 64 * 2**stage
        for b in range(n):
            p = f"backbone.layer{stage + 1}.{b}"
            shapes[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            shapes[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            shapes |= bn(f"{p}.bn1", planes) | bn(f"{p}.bn2", planes) | bn(f"{p}.bn3", planes * 4)
            if b == 0:
                shapes[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                shapes |= bn(f"{p}.downsample.1", planes * 4)
            inplanes = planes * 4
    return shapes


def fcn_aux(cin, channels, num_classes):
    """mmseg's FCNHead as the auxiliary head (one 3x3 conv)."""
    return conv_module("auxiliary_head.convs.0", cin, channels, 3) | conv_seg("auxiliary_head", channels, num_classes)


def sep_aspp_head(cin, c1_in, channels, c1_channels, num_classes):
    """mmseg's DepthwiseSeparableASPPHead with dilations (1, 12, 24, 36)."""
    shapes = conv_module("decode_head.image_pool.1", cin, channels, 1)
    shapes |= conv_module("decode_head.aspp_modules.0", cin, channels, 1)
    for i in (1, 2, 3):
        shapes |= separable(f"decode_head.aspp_modules.{i}", cin, channels)
    shapes |= conv_module("decode_head.bottleneck", 5 * channels, channels, 3)
    shapes |= conv_module("decode_head.c1_bottleneck", c1_in, c1_channels, 1)
    shapes |= separable("decode_head.sep_bottleneck.0", channels + c1_channels, channels)
    shapes |= separable("decode_head.sep_bottleneck.1", channels, channels)
    return shapes | conv_seg("decode_head", channels, num_classes)


def enc_head(cin, channels, num_codes, num_classes):
    """mmseg's EncHead (use_se_loss, no lateral convs) with mmcv's Encoding."""
    shapes = conv_module("decode_head.bottleneck", cin, channels, 3)
    shapes |= conv_module("decode_head.enc_module.encoding_project", channels, channels, 1)
    shapes |= {"decode_head.enc_module.encoding.0.codewords": (num_codes, channels),
               "decode_head.enc_module.encoding.0.scale": (num_codes,)}
    shapes |= bn("decode_head.enc_module.encoding.1", num_codes)
    shapes |= {"decode_head.enc_module.fc.0.weight": (channels, channels),
               "decode_head.enc_module.fc.0.bias": (channels,),
               "decode_head.se_layer.weight": (num_classes, channels), "decode_head.se_layer.bias": (num_classes,)}
    return shapes | conv_seg("decode_head", channels, num_classes)


def cc_head(cin, channels, num_classes):
    """mmseg's CCHead: FCNHead(num_convs=2, concat_input) with mmcv's CrissCrossAttention (gamma is a Scale)."""
    shapes = conv_module("decode_head.convs.0", cin, channels, 3) | conv_module("decode_head.convs.1", channels,
                                                                                   channels, 3)
    shapes |= conv_module("decode_head.conv_cat", cin + channels, channels, 3)
    for name, cout in (("query_conv", channels // 8), ("key_conv", channels // 8), ("value_conv", channels)):
        shapes |= {f"decode_head.cca.{name}.weight": (cout, channels, 1, 1), f"decode_head.cca.{name}.bias": (cout,)}
    shapes["decode_head.cca.gamma.scale"] = ()
    return shapes | conv_seg("decode_head", channels, num_classes)


def ln(prefix, c):
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,)}


def transformer_layer(prefix, width, hidden):
    """mmcv's TransformerEncoderLayer as mmseg's ViT builds it: `ln1`, MultiheadAttention wrapping
    nn.MultiheadAttention (`attn.attn`), `ln2`, FFN (`ffn.layers.0.0` Linear+GELU, `ffn.layers.1` Linear)."""
    return ln(f"{prefix}.ln1", width) | ln(f"{prefix}.ln2", width) | {
        f"{prefix}.attn.attn.in_proj_weight": (3 * width, width), f"{prefix}.attn.attn.in_proj_bias": (3 * width,),
        f"{prefix}.attn.attn.out_proj.weight": (width, width), f"{prefix}.attn.attn.out_proj.bias": (width,),
        f"{prefix}.ffn.layers.0.0.weight": (hidden, width), f"{prefix}.ffn.layers.0.0.bias": (hidden,),
        f"{prefix}.ffn.layers.1.weight": (width, hidden), f"{prefix}.ffn.layers.1.bias": (width,),
    }


def vit(width=64, depth=6, patch=16, grid=4, hidden=192, final_norm=False):
    """mmseg's VisionTransformer (a class-token slot in `pos_embed` always; `ln1` is the final norm).
    The defaults have the shape of timm's test_vit (mlp ratio 3) with a 4x4 patch grid."""
    shapes = {"backbone.cls_token": (1, 1, width), "backbone.pos_embed": (1, 1 + grid * grid, width),
              "backbone.patch_embed.projection.weight": (width, 3, patch, patch),
              "backbone.patch_embed.projection.bias": (width,)}
    for i in range(depth):
        shapes |= transformer_layer(f"backbone.layers.{i}", width, hidden)
    return shapes | (ln("backbone.ln1", width) if final_norm else {})


def setr_up_head(prefix, cin, channels, num_convs, kernel, num_classes):
    """mmseg's SETRUPHead: `norm` (LayerNorm), `up_convs.i` = Sequential(ConvModule, Upsample), conv_seg."""
    shapes = ln(f"{prefix}.norm", cin)
    for i in range(num_convs):
        shapes |= conv_module(f"{prefix}.up_convs.{i}.0", cin if i == 0 else channels, channels, kernel)
    return shapes | conv_seg(prefix, channels, num_classes)


def mla(cin, mla_channels, head_channels, num_classes):
    """mmseg's MLANeck (per-level LayerNorm; MLAModule: 1x1 `channel_proj`, 3x3 `feat_extract`), SETRMLAHead
    (`up_convs.i` = two 3x3 ConvModules and an Upsample, 1x1 conv_seg on the concatenation) and the four
    FCNHead(num_convs=0) auxiliary heads."""
    shapes = {}
    for i in range(4):
        shapes |= ln(f"neck.norm.{i}", cin) | conv_module(f"neck.mla.channel_proj.{i}", cin, mla_channels, 1)
        shapes |= conv_module(f"neck.mla.feat_extract.{i}", mla_channels, mla_channels, 3)
        shapes |= conv_module(f"decode_head.up_convs.{i}.0", mla_channels, head_channels, 3)
        shapes |= conv_module(f"decode_head.up_convs.{i}.1", head_channels, head_channels, 3)
        shapes |= conv_seg(f"auxiliary_head.{i}", mla_channels, num_classes)
    return shapes | conv_seg("decode_head", 4 * head_channels, num_classes)


def segmenter_mask_head(cin, embed, layers, num_classes):
    """mmseg's SegmenterMaskTransformerHead; its `conv_seg` (built by every decode head) is never used."""
    shapes = {"decode_head.dec_proj.weight": (embed, cin), "decode_head.dec_proj.bias": (embed,),
              "decode_head.cls_emb": (1, num_classes, embed), "decode_head.patch_proj.weight": (embed, embed),
              "decode_head.classes_proj.weight": (embed, embed)}
    for i in range(layers):
        shapes |= transformer_layer(f"decode_head.layers.{i}", embed, 4 * embed)
    shapes |= ln("decode_head.decoder_norm", embed) | ln("decode_head.mask_norm", num_classes)
    return shapes | conv_seg("decode_head", cin, num_classes)


def random_tensors(shapes, seed):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=g) + 0.5
        elif len(shape) > 1:
            out[key] = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
        else:
            out[key] = torch.randn(shape, generator=g) * 0.1 + (1.0 if key.endswith(".weight") else 0.0)
    return out


# This file's own reading of the layout: mmseg's name -> ours, applied to fill the reference model.
STEM = {"stem.0.": "conv1.0.", "stem.1.": "conv1.1.", "stem.3.": "conv1.3.", "stem.4.": "conv1.4.",
        "stem.6.": "conv1.6.", "stem.7.": "bn1."}


BLOCK = {"ln1.": "norm1.", "ln2.": "norm2.", "attn.attn.in_proj_weight": "attn.qkv.weight",
         "attn.attn.in_proj_bias": "attn.qkv.bias", "attn.attn.out_proj.": "attn.proj.", "ffn.layers.0.0.": "mlp.fc1.",
         "ffn.layers.1.": "mlp.fc2."}


def ours(key):
    if key.startswith("backbone.stem."):
        head, _, rest = key.removeprefix("backbone.").partition(".")
        index, _, rest = rest.partition(".")
        return "backbone." + STEM[f"{head}.{index}."] + rest
    if key == "decode_head.cca.gamma.scale":
        return "decode_head.cca.gamma"
    if key.startswith("backbone.patch_embed.projection."):
        return key.replace("projection", "proj")
    if key.startswith("backbone.ln1."):
        return key.replace("ln1", "norm")
    for layers, blocks in (("backbone.layers.", "backbone.blocks."), ("decode_head.layers.", "decode_head.layers.")):
        if key.startswith(layers):
            index, _, rest = key.removeprefix(layers).partition(".")
            for theirs, mine in BLOCK.items():
                if rest.startswith(theirs):
                    return f"{blocks}{index}.{mine}{rest.removeprefix(theirs)}"
    return key


def reference(name, num_classes, tensors, **config):
    if name in CNN_CASES:  # skip initialising ResNet-50's tensors: they are all replaced
        with torch.device("meta"):
            model = engine.create_model(name, num_classes, **config)
    else:
        model = engine.create_model(name, num_classes, **config)
    model.load_state_dict({ours(k): v for k, v in tensors.items()}, strict=True, assign=True)
    return model.eval()


CLASSES = [f"c{i}" for i in range(5)]
PALETTE = [[i * 40, 255 - i * 40, 7] for i in range(5)]

def resnet_config(output_stride=8):
    """mmseg 0.x's `meta["config"]`: the config's pretty_text, dicts written as dict(...) on one line."""
    strides, dilations = {8: ((1, 2, 1, 1), (1, 1, 2, 4)), 16: ((1, 2, 2, 1), (1, 1, 1, 2))}[output_stride]
    return ("norm_cfg = dict(type='SyncBN', requires_grad=True)\n"
            "model = dict(type='EncoderDecoder', pretrained='open-mmlab://resnet50_v1c', backbone=dict("
            f"type='ResNetV1c', depth=50, num_stages=4, out_indices=(0, 1, 2, 3), dilations={dilations}, "
            f"strides={strides}, norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False, "
            "style='pytorch', contract_dilation=True), decode_head=dict(type='CCHead', in_channels=2048, "
            "in_index=3, channels=512, recurrence=2, concat_input=True, dropout_ratio=0.1, num_classes=19, "
            "norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False, loss_decode=dict("
            "type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))\n"
            "img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)\n"
            "crop_size = (512, 1024)\n")


def vit_config(out_indices, *, interpolate_mode, with_cls_token=True):
    return (f"model = dict(type='EncoderDecoder', backbone=dict(type='VisionTransformer', img_size=(64, 64), "
            f"embed_dims=64, num_layers=6, num_heads=2, out_indices={out_indices}, with_cls_token={with_cls_token}, "
            f"interpolate_mode='{interpolate_mode}'), decode_head=dict(type='X', align_corners=False))\n")


CNN_CASES = {
    # name: (head shapes, the config our model must come out with)
    "deeplabv3plus": (
        lambda: sep_aspp_head(2048, 256, 16, 8, 5) | fcn_aux(1024, 8, 5),
        dict(output_stride=8, channels=16, c1_channels=8, separable=True, aspp_bottleneck_kernel=3, aux=True,
             aux_channels=8),
    ),
    "encnet": (
        lambda: enc_head(2048, 16, 4, 5) | fcn_aux(1024, 8, 5),
        dict(output_stride=8, channels=16, num_codes=4, aux=True, aux_channels=8),
    ),
    "ccnet": (
        lambda: cc_head(2048, 16, 5) | fcn_aux(1024, 8, 5),
        dict(output_stride=8, channels=16, recurrence=2, aux=True, aux_channels=8),
    ),
}


# Transformers on a test_vit-shaped ViT (64 wide, 6 blocks, 4x4 grid: img_size 64): head shapes, the config our
# model must come out with, mmseg tensors that mmseg builds but never uses, the config text.
VIT_CASES = {
    "setr_naive": (
        lambda: vit() | setr_up_head("decode_head", 64, 16, 1, 1, 5)
        | {k: v for i in range(3) for k, v in setr_up_head(f"auxiliary_head.{i}", 64, 16, 2, 1, 5).items()},
        dict(channels=16, num_convs=1, up_scale=4, aux=True, aux_indices=(1, 3, 4), aux_num_convs=2, img_size=64),
        (), vit_config((1, 3, 4, 5), interpolate_mode="bilinear"),
    ),
    "setr_pup": (
        lambda: vit() | setr_up_head("decode_head", 64, 16, 4, 3, 5)
        | {k: v for i in range(3) for k, v in setr_up_head(f"auxiliary_head.{i}", 64, 16, 2, 3, 5).items()},
        dict(channels=16, aux=True, aux_indices=(1, 3, 4), aux_num_convs=2, img_size=64), (),
        vit_config((1, 3, 4, 5), interpolate_mode="bilinear"),
    ),
    "setr_mla": (
        lambda: vit() | mla(64, 16, 8, 5),
        dict(mla_indices=(1, 2, 3, 5), mla_channels=16, mlahead_channels=8, aux=True, img_size=64),
        ("backbone.cls_token",), vit_config((1, 2, 3, 5), interpolate_mode="bilinear", with_cls_token=False),
    ),
    "segmenter_linear": (lambda: vit(final_norm=True) | conv_seg("decode_head", 64, 5), dict(img_size=64), (),
                         vit_config((5,), interpolate_mode="bicubic")),
    "segmenter_mask": (
        lambda: vit(final_norm=True) | segmenter_mask_head(64, 32, 2, 5),
        dict(num_layers=2, embed_dims=32, img_size=64), ("decode_head.conv_seg.weight", "decode_head.conv_seg.bias"),
        vit_config((5,), interpolate_mode="bicubic"),
    ),
}


def mmseg_rule(model, x):
    """mmseg's logits for `x`: padded bottom-right to the patch size (zeros, as its PatchEmbed's corner
    padding), the decode head's output resized straight to the input size (bilinear, align_corners=False).
    Written here from mmseg's behaviour, not through SegModel's own padding code."""
    h, w = x.shape[-2:]
    d = model.size_divisor
    padded = torch.nn.functional.pad(x, (0, -w % d, 0, -h % d))
    logits = model.heads(model.backbone(padded), False)["out"]
    return torch.nn.functional.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)


@pytest.mark.parametrize("name", list(VIT_CASES))
def test_transformer_checkpoint_imports_and_computes_what_the_tensors_say(name, tmp_path):
    shapes, config, unused, text = VIT_CASES[name]
    state = random_tensors(shapes(), seed=4)
    meta = {"CLASSES": tuple(CLASSES), "PALETTE": PALETTE, "config": text}
    loaded = engine.import_mmseg(save(tmp_path / f"{name}.pth", state, meta))
    # Configs hold plain JSON values (tuples as lists).
    assert loaded.model.config == json.loads(json.dumps({"name": name, "num_classes": 5, "backbone": "test_vit",
                                                         **engine.architecture_options(name), **config,
                                                         "pad_rule": "mmseg"}))
    assert [c.name for c in loaded.classes] == CLASSES
    mean = [127.5] * 3 if name.startswith("segmenter") else [123.675, 116.28, 103.53]
    assert loaded.normalization[0] == mean
    ref = reference(name, 5, {k: v for k, v in state.items() if k not in unused}, backbone="test_vit", **config)
    assert ref.pad_rule == "crop"  # SegAssist's own rule
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 3, 64, 64, generator=g)
    with torch.no_grad():
        expected, got = ref(x), loaded.model(x)
    assert torch.isfinite(expected).all()
    assert torch.equal(got, expected)
    for h, w in ((50, 70), (33, 17)):  # not multiples of 16: mmseg's rule, not ours
        x = torch.randn(2, 3, h, w, generator=g)
        with torch.no_grad():
            expected, got, native = mmseg_rule(ref, x), loaded.model(x), ref(x)
        assert got.shape == (2, 5, h, w)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
        assert (got - native).abs().max() > 1e-2  # the two rules differ here, so the check above can fail


# mmengine's runner keeps `cfg.pretty_text` in `meta["cfg"]`: this is that layout (every tuple and list item on a
# line of its own, keys sorted, the data preprocessor's mean and std run together as yapf writes them).
MMENGINE_CCNET_OS16 = """crop_size = (
    512,
    1024,
)
data_preprocessor = dict(
    bgr_to_rgb=True,
    mean=[
        1.0,
        2.0,
        3.0,
    ], std=[
        4.0,
        5.0,
        6.0,
    ], type='SegDataPreProcessor')
norm_cfg = dict(requires_grad=True, type='SyncBN')
model = dict(
    backbone=dict(
        contract_dilation=True,
        depth=50,
        dilations=(
            1,
            1,
            1,
            2,
        ),
        norm_cfg=dict(requires_grad=True, type='SyncBN'),
        norm_eval=False,
        num_stages=4,
        out_indices=(
            0,
            1,
            2,
            3,
        ),
        strides=(
            1,
            2,
            2,
            1,
        ),
        style='pytorch',
        type='ResNetV1c'),
    decode_head=dict(
        align_corners=False,
        channels=512,
        concat_input=True,
        in_channels=2048,
        in_index=3,
        norm_cfg=dict(requires_grad=True, type='SyncBN'),
        num_classes=19,
        recurrence=3,
        type='CCHead'),
    pretrained='open-mmlab://resnet50_v1c',
    type='EncoderDecoder')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(keep_ratio=True, ratio_range=(
        0.5,
        2.0,
    ), scale=(
        2048,
        1024,
    ), type='RandomResize'),
]
"""

# The same facts on one line each, as mmseg 0.x's mmcv Config wrote them.
ONE_LINE_CCNET_OS16 = (
    "crop_size = (512, 1024)\n"
    "data_preprocessor = dict(bgr_to_rgb=True, mean=[1.0, 2.0, 3.0], std=[4.0, 5.0, 6.0], "
    "type='SegDataPreProcessor')\n"
    "model = dict(type='EncoderDecoder', backbone=dict(type='ResNetV1c', depth=50, strides=(1, 2, 2, 1), "
    "dilations=(1, 1, 1, 2), contract_dilation=True), decode_head=dict(type='CCHead', recurrence=3, "
    "align_corners=False))\n"
)


@pytest.fixture(scope="module")
def resnet_tensors():
    return random_tensors(resnet_v1c(), seed=0)


def cnn_checkpoint(name, resnet_tensors):
    heads, config = CNN_CASES[name]
    return {**resnet_tensors, **random_tensors(heads(), seed=1)}, config


def save(path, state, meta=None, **extra):
    torch.save({"state_dict": state, "meta": meta or {}, **extra}, path)
    return path


# ---------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", list(CNN_CASES))
def test_cnn_checkpoint_imports_and_computes_what_the_tensors_say(name, resnet_tensors, tmp_path):
    state, config = cnn_checkpoint(name, resnet_tensors)
    meta = {"CLASSES": tuple(CLASSES), "PALETTE": PALETTE, "config": resnet_config(8), "mmcv_version": "1.4.0"}
    path = save(tmp_path / f"{name}_r50-d8.pth", state, meta)
    loaded = engine.import_mmseg(path)
    assert loaded.model.config == {"name": name, "num_classes": 5, "backbone": "resnet50c",
                                   **engine.architecture_options(name), **config, "pad_rule": "mmseg"}
    assert loaded.meta["crop_size"] == [512, 1024]
    assert not loaded.model.training
    assert [c.name for c in loaded.classes] == CLASSES
    assert [list(c.color) for c in loaded.classes] == PALETTE
    assert loaded.meta["imported_from"] == path.name and loaded.meta["source"] == "mmsegmentation"
    assert loaded.normalization == ([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
    ref = reference(name, 5, state, backbone="resnet50c", **config)
    x = torch.randn(1, 3, 16, 20, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = ref(x), loaded.model(x)
    assert torch.isfinite(expected).all()
    assert torch.equal(got, expected)
    x = torch.randn(1, 3, 27, 21, generator=torch.Generator().manual_seed(3))  # not a multiple of the stride
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), mmseg_rule(ref, x), rtol=0, atol=1e-5)


def test_mmengine_checkpoint_with_side_entries_and_config_text(resnet_tensors, tmp_path, monkeypatch):
    """mmseg 1.x: classes under meta["dataset_meta"], the config text under meta["cfg"], and training side
    entries that weights_only refuses (numpy scalars, the training framework's logging buffers): those
    become inert stand-ins, whatever their unpickling would have done."""
    import numpy as np

    state, config = cnn_checkpoint("ccnet", resnet_tensors)
    marker = tmp_path / "side-effect"
    buffers = types.ModuleType("mmengine.logging.history_buffer")

    def touch(name):
        open(name, "w").close()

    class HistoryBuffer:
        def __reduce__(self):  # unpickled for real, this would create a file
            return (touch, (str(marker),))

    class Wrapper:
        def __init__(self):
            self.inner = HistoryBuffer()

    for obj in (touch, HistoryBuffer, Wrapper):
        obj.__module__, obj.__qualname__ = buffers.__name__, obj.__name__
        setattr(buffers, obj.__name__, obj)
    for mod in ("mmengine", "mmengine.logging", buffers.__name__):
        monkeypatch.setitem(sys.modules, mod, buffers if mod == buffers.__name__ else types.ModuleType(mod))
    hub = {"log_scalars": {"train/loss": Wrapper()}, "runtime_info": {"iter": np.int64(80000)}}
    cfg = MMENGINE_CCNET_OS16
    meta = {"dataset_meta": {"classes": CLASSES, "palette": PALETTE}, "seed": np.int64(3), "cfg": cfg}
    path = save(tmp_path / "ccnet.pth", state, meta, message_hub=hub, param_schedulers=[{"last_step": 3}])
    with pytest.raises(Exception):  # noqa: B017 (torch's own refusal; any error type)
        torch.load(path, weights_only=True)
    loaded = engine.import_mmseg(path)
    assert not marker.exists()
    assert [c.name for c in loaded.classes] == CLASSES
    assert loaded.model.config == {**loaded.model.config, **config, "output_stride": 16, "recurrence": 3}
    assert loaded.normalization == ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert loaded.meta["crop_size"] == [512, 1024]


@pytest.mark.parametrize("payload", ["open", "system"])
def test_pickle_that_would_run_code_is_refused_and_runs_nothing(payload, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            if payload == "open":
                return (builtins.open, (str(marker), "w"))
            return (os.system, (f"touch {marker}",))

    path = save(tmp_path / "evil.pth", {"decode_head.conv_seg.weight": torch.zeros(2, 4, 1, 1)}, {"x": Payload()})
    with pytest.raises(engine.MMSegImportError, match=r"evil\.pth: refused to load: .*(open|system)"):
        engine.import_mmseg(path)
    assert not marker.exists()


def test_leftover_and_missing_tensors_fail_naming_them(resnet_tensors, tmp_path):
    state, _ = cnn_checkpoint("deeplabv3plus", resnet_tensors)
    state["decode_head.extra.weight"] = torch.zeros(3)
    del state["decode_head.sep_bottleneck.1.pointwise_conv.bn.running_var"]
    del state["backbone.stem.7.weight"]
    path = save(tmp_path / "dl.pth", state)
    with pytest.raises(engine.MMSegImportError) as info:
        engine.import_mmseg(path, output_stride=8)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "1 checkpoint tensors have no place in the model: decode_head.extra.weight" in message
    assert "2 model tensors are missing from the checkpoint: backbone.stem.7.weight (for backbone.bn1.weight), " \
           "decode_head.sep_bottleneck.1.pointwise_conv.bn.running_var" in message


def test_state_dict_alone_as_safetensors_and_the_name_argument(resnet_tensors, tmp_path):
    state, _ = cnn_checkpoint("ccnet", resnet_tensors)
    path = tmp_path / "cc.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(engine.MMSegImportError, match=r"cc\.safetensors: asked to import as encnet, .* ccnet"):
        engine.import_mmseg(path, name="encnet")
    with pytest.raises(engine.MMSegImportError, match=r"cc\.safetensors: unknown architecture 'pspnet'"):
        engine.import_mmseg(path, name="pspnet")
    # A state dict alone does not say the output stride (the weights are the same at 8 and 16).
    with pytest.raises(engine.MMSegImportError, match=r"cc\.safetensors: the output stride .* pass output_stride"):
        engine.import_mmseg(path, name="ccnet")
    loaded = engine.import_mmseg(path, name="ccnet", output_stride=16)
    assert loaded.model.arch == "ccnet" and loaded.model.config["output_stride"] == 16
    assert [c.name for c in loaded.classes] == [f"class{i}" for i in range(5)]
    assert loaded.meta["imported_from"] == "cc.safetensors"


def test_unsupported_checkpoints_are_named(tmp_path):
    psp = random_tensors(conv_module("decode_head.psp_modules.0.1", 64, 8, 1) | conv_seg("decode_head", 8, 3), 3)
    with pytest.raises(engine.MMSegImportError, match=r"psp\.pth: no supported architecture.*psp_modules"):
        engine.import_mmseg(save(tmp_path / "psp.pth", psp))
    not_a_checkpoint = tmp_path / "junk.pth"
    not_a_checkpoint.write_bytes(b"not a zip file at all")
    with pytest.raises(engine.MMSegImportError, match=r"junk\.pth: not a readable PyTorch checkpoint"):
        engine.import_mmseg(not_a_checkpoint)


def test_setr_mla_head_under_mmseg_015_names_imports_alike(tmp_path):
    """mmseg 0.15 named the per-level convs `decode_head.mlahead.{i}`, later versions `decode_head.up_convs.{i}`."""
    state = random_tensors(VIT_CASES["setr_mla"][0](), seed=6)
    old = {k.replace("decode_head.up_convs.", "decode_head.mlahead."): v for k, v in state.items()}
    meta = {"config": VIT_CASES["setr_mla"][3]}
    new_names = engine.import_mmseg(save(tmp_path / "new.pth", state, meta)).model
    old_names = engine.import_mmseg(save(tmp_path / "old.pth", old, meta)).model
    x = torch.randn(1, 3, 48, 64, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert torch.equal(old_names(x), new_names(x))


def test_transformer_checkpoints_that_do_not_fit_are_named(tmp_path):
    state = random_tensors(VIT_CASES["setr_mla"][0](), seed=8)
    with pytest.raises(engine.MMSegImportError, match=r"mla\.pth: the config sets with_cls_token=True"):
        engine.import_mmseg(save(tmp_path / "mla.pth", state, {"config": vit_config((1, 2, 3, 5),
                                                                                   interpolate_mode="bilinear")}))
    with pytest.raises(engine.MMSegImportError, match=r"mla\.pth: which of the ViT's 6 blocks the heads read is not"):
        engine.import_mmseg(save(tmp_path / "mla.pth", state))  # no config text: out_indices unknown
    text = vit_config((1, 2, 3, 5), interpolate_mode="bicubic", with_cls_token=False)
    with pytest.raises(engine.MMSegImportError, match=r"mla\.pth: the config resizes position embeddings with "
                                                      r"interpolate_mode='bicubic'; .* uses 'bilinear'"):
        engine.import_mmseg(save(tmp_path / "mla.pth", state, {"config": text}))
    wide = random_tensors(vit(width=80, hidden=160) | conv_seg("decode_head", 80, 3), seed=9)
    with pytest.raises(engine.MMSegImportError, match=r"wide\.pth: a ViT 80 wide with 6 blocks and patch size 16"):
        engine.import_mmseg(save(tmp_path / "wide.pth", wide))


def test_mmseg_attention_tensors_mean_the_same_in_timm_attention():
    """mmseg's ViT layers hold torch's nn.MultiheadAttention (`attn.attn`: in_proj = [q; k; v], heads
    contiguous); the importer's renaming must give timm's fused qkv the same meaning."""
    from timm.models.vision_transformer import Block

    from engine.mmseg_import import _VIT_RULES, KeyMap

    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True).eval()
    with torch.no_grad():
        for p in mha.parameters():
            p.normal_(0, 0.2)
    keymap = KeyMap(_VIT_RULES)
    block = Block(32, 4, qkv_bias=True).eval()
    renamed = {keymap.to_ours(f"backbone.layers.3.attn.attn.{k}"): v for k, v in mha.state_dict().items()}
    attn = {k.removeprefix("backbone.blocks.3.attn."): v for k, v in renamed.items()}
    block.attn.load_state_dict(attn, strict=True)
    x = torch.randn(2, 7, 32)
    with torch.no_grad():
        assert torch.allclose(block.attn(x), mha(x, x, x, need_weights=False)[0], atol=1e-5)


@pytest.mark.parametrize("text", [MMENGINE_CCNET_OS16, ONE_LINE_CCNET_OS16], ids=["mmengine", "one-line"])
def test_config_text_in_either_layout_gives_the_output_stride_normalisation_and_crop(text, resnet_tensors, tmp_path):
    state, config = cnn_checkpoint("ccnet", resnet_tensors)
    loaded = engine.import_mmseg(save(tmp_path / "cc.pth", state, {"cfg": text}))
    assert loaded.model.config["output_stride"] == 16 and loaded.model.config["recurrence"] == 3
    assert loaded.normalization == ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert loaded.meta["crop_size"] == [512, 1024]
    # an output stride 16 backbone: features at 1/16 (timm's dilations follow)
    assert loaded.model.backbone.feature_info.reduction()[-1] == 16


def test_config_text_is_read_as_literals_and_nothing_in_it_runs(tmp_path):
    from engine.mmseg_config import UNKNOWN, read_config_text

    marker = tmp_path / "ran"
    text = (f"import os\nos.system('touch {marker}')\n"
            f"x = __import__('os').system('touch {marker}')\n"
            "norm = dict(type='BN')\n"
            "model = dict(backbone=dict(norm_cfg=norm, strides=(1, -2), f=open('x'), **{'a': 1}), y=1 + 2)\n")
    cfg = read_config_text(text)
    assert not marker.exists()
    assert cfg.readable and cfg.get("x") is UNKNOWN
    assert cfg.get("model.backbone") is UNKNOWN  # dict(**other): not a literal
    assert cfg.get("model.y") is UNKNOWN  # an operator; the rest of `model` still reads
    cfg = read_config_text(text.replace(", **{'a': 1}", ""))
    assert cfg.get("model.backbone.norm_cfg") == {"type": "BN"}  # a name assigned earlier
    assert cfg.get("model.backbone.strides") == (1, -2)
    assert cfg.get("model.backbone.f") is UNKNOWN and cfg.get("model.y") is UNKNOWN
    assert not read_config_text("model = dict(\n").readable and not read_config_text(None).readable
    assert read_config_text("(" * 200_000).readable is False  # deeper than the parser goes: unreadable, no crash


@pytest.mark.parametrize("setting, message", [
    ("align_corners=True", "align_corners=True"),
    ("bgr_to_rgb=False", "BGR input"),
    ("strides=(1, 2, 2, 2)", "strides=(1, 2, 2, 2) and dilations=(1, 1, 1, 2)"),
    ("contract_dilation=False", "contract_dilation=False"),
    ("multi_grid=(1, 2, 4)", "multi_grid=(1, 2, 4)"),
])
def test_config_settings_our_models_cannot_reproduce_fail_naming_them(setting, message, resnet_tensors, tmp_path):
    key = setting.split("=")[0]
    text = ONE_LINE_CCNET_OS16
    if key == "multi_grid":
        text = text.replace("contract_dilation=True", f"contract_dilation=True, {setting}")
    else:
        text = re.sub(rf"{key}=(\([^)]*\)|\w+)", setting, text)
    state, _ = cnn_checkpoint("ccnet", resnet_tensors)
    with pytest.raises(engine.MMSegImportError, match=rf"cc\.pth: the checkpoint's config sets {re.escape(message)}"):
        engine.import_mmseg(save(tmp_path / "cc.pth", state, {"cfg": text}))


def test_output_stride_argument_must_agree_with_the_config(resnet_tensors, tmp_path):
    state, _ = cnn_checkpoint("ccnet", resnet_tensors)
    path = save(tmp_path / "cc.pth", state, {"cfg": MMENGINE_CCNET_OS16})
    with pytest.raises(engine.MMSegImportError, match=r"asked for output stride 8, but the checkpoint's config sets"):
        engine.import_mmseg(path, output_stride=8)
    assert engine.import_mmseg(path, output_stride=16).model.config["output_stride"] == 16


@pytest.mark.parametrize("name", list(VIT_CASES))
def test_vit_without_patch_embedding_bias_imports_with_a_zero_bias(name, tmp_path):
    """mmseg 1.x's VisionTransformer defaults to patch_bias=False; only that bias may be absent."""
    shapes, config, unused, text = VIT_CASES[name]
    state = random_tensors(shapes(), seed=10)
    del state["backbone.patch_embed.projection.bias"]
    loaded = engine.import_mmseg(save(tmp_path / "vit.pth", state, {"config": text}))
    assert torch.equal(loaded.model.backbone.patch_embed.proj.bias, torch.zeros(64))
    ref = reference(name, 5, {k: v for k, v in state.items() if k not in unused}
                    | {"backbone.patch_embed.projection.bias": torch.zeros(64)}, backbone="test_vit", **config)
    x = torch.randn(1, 3, 64, 48, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        assert torch.equal(loaded.model(x), ref(x))
    del state["backbone.layers.0.attn.attn.out_proj.bias"]
    with pytest.raises(engine.MMSegImportError, match=r"1 model tensors are missing from the checkpoint: "
                                                      r"backbone\.layers\.0\.attn\.attn\.out_proj\.bias"):
        engine.import_mmseg(save(tmp_path / "vit2.pth", state, {"config": text}))


def test_imported_model_file_keeps_mmseg_padding_rule(tmp_path):
    shapes, _, _, text = VIT_CASES["segmenter_linear"]
    loaded = engine.import_mmseg(save(tmp_path / "seg.pth", random_tensors(shapes(), seed=12), {"config": text}))
    out = engine.save_model(tmp_path / "seg.safetensors", loaded.model, classes=loaded.classes, **loaded.meta)
    again = engine.load_model(out)
    assert again.model.pad_rule == "mmseg" and again.model.config["pad_rule"] == "mmseg"
    x = torch.randn(1, 3, 40, 56, generator=torch.Generator().manual_seed(13))
    with torch.no_grad():
        assert torch.equal(again.model(x), loaded.model(x))
    native = engine.create_model("segmenter_linear", 3, backbone="test_vit")
    assert native.pad_rule == "crop" and "pad_rule" not in native.config
    with pytest.raises(ValueError, match="pad_rule must be one of 'crop', 'mmseg', got 'stretch'"):
        engine.create_model("segmenter_linear", 3, backbone="test_vit", pad_rule="stretch")


def test_explain_follows_the_imported_models_padding_rule(tmp_path):
    shapes, _, _, text = VIT_CASES["segmenter_mask"]
    model = engine.import_mmseg(save(tmp_path / "seg.pth", random_tensors(shapes(), seed=14), {"config": text})).model
    x = torch.randn(1, 3, 40, 56, generator=torch.Generator().manual_seed(15))
    maps = engine.explain(model, x, (39, 55))  # the bottom-right pixel, next to the padding
    assert {"cam", "attention/layer0", "attention/decoder1"} <= set(maps)
    assert all(m.shape == (40, 56) and torch.isfinite(m).all() for m in maps.values())
    # patch maps stay where the patches lie on the padded input: the point's patch row/column is constant
    layer = maps["attention/layer5"]
    assert torch.equal(layer[32:40, 48:56], layer[32, 48].expand(8, 8))
