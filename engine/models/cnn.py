"""What the CNN architectures share: a dilated timm backbone, its normalisation, the auxiliary FCN head, and
the import of mmsegmentation's ResNet checkpoints."""

from __future__ import annotations

import torch

from engine.layers import FCNHead
from engine.mmseg_plan import CheckpointMismatch, ImportPlan, KeyMap, State, count, describe_heads, shape
from engine.models.base import OptimizerDefaults, SegModel
from engine.timm_backbones import IMAGENET_MEAN, IMAGENET_STD, backbone_normalization, create_cnn_backbone

# mmseg's ResNetV1c/ResNet (V1b) block counts per stage -> depth.
_RESNET_DEPTHS = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}

# ResNetV1c's deep stem (conv-BN-ReLU x3) against timm's `conv1` Sequential and `bn1`.
_RESNET_V1C_STEM = (
    ("backbone.stem.0.", "backbone.conv1.0."),
    ("backbone.stem.1.", "backbone.conv1.1."),
    ("backbone.stem.3.", "backbone.conv1.3."),
    ("backbone.stem.4.", "backbone.conv1.4."),
    ("backbone.stem.6.", "backbone.conv1.6."),
    ("backbone.stem.7.", "backbone.bn1."),
)


def mmseg_resnet(state: State) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The timm name of an mmseg checkpoint's ResNet backbone and the renaming rules for it."""
    if "backbone.stem.0.weight" in state:
        variant, rules = "c", _RESNET_V1C_STEM  # ResNetV1c: deep stem
        if shape(state, "backbone.stem.0.weight")[0] != 32:
            raise CheckpointMismatch(f"the ResNetV1c stem is {state['backbone.stem.0.weight'].shape[0]} wide; timm's "
                                     f"resnet*c stems are 32 wide")
    elif "backbone.conv1.weight" in state:
        variant, rules = "", ()  # ResNet (V1b): the same names as timm's
    else:
        raise CheckpointMismatch(f"the backbone is not a ResNet ({describe_heads(state)})")
    if any(k.startswith("backbone.layer2.0.downsample.2.") for k in state):
        raise CheckpointMismatch("a ResNetV1d backbone (average-pool downsampling); its dilated stages differ from "
                                 "timm's resnet*d, so it is not supported")
    if "backbone.layer1.0.conv3.weight" not in state:
        raise CheckpointMismatch("a ResNet-18/34 backbone (basic blocks); mmseg dilates basic blocks differently from "
                                 "timm, so only ResNet-50/101/152 are supported")
    blocks = tuple(count(state, f"backbone.layer{i}.") for i in range(1, 5))
    depth = _RESNET_DEPTHS.get(blocks)
    if depth is None:
        raise CheckpointMismatch(f"a ResNet with {blocks} blocks per stage; supported: "
                                 f"{', '.join(f'{v} {k}' for k, v in _RESNET_DEPTHS.items())}")
    return f"resnet{depth}{variant}", rules


class CNNSegModel(SegModel):
    """A dilated CNN backbone (`self.spec` says which features are where) and an auxiliary FCN head on the
    penultimate stage. Subclasses build `decode_head` and implement `decode`."""

    family = "cnn"
    encoder_family = "cnn"
    small_backbones = ("resnet18", "mobilenetv3_large_100")
    # mmseg's ResNet-D8 recipe: SGD lr 0.01, momentum 0.9, weight decay 5e-4, no warm-up.
    optimizer_defaults = OptimizerDefaults(sgd_lr=0.01, weight_decay=5e-4)
    mmseg_backbones = "ResNetV1c/ResNet-50/101/152"

    def __init__(self, num_classes: int, backbone: str, *, pretrained: bool | str, output_stride: int, aux: bool,
                 aux_channels: int, dropout: float):
        super().__init__(num_classes)
        self.backbone, self.spec = create_cnn_backbone(backbone, output_stride, pretrained)
        self.normalization = backbone_normalization(self.backbone)
        c = self.spec.channels
        self.auxiliary_head = FCNHead(c[self.spec.aux], num_classes, aux_channels, dropout=dropout) if aux else None

    def decode(self, feats: list[torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        """The decode head's outputs: `"out"` (and, with `train`, its own extras such as EncNet's `"se"`)."""
        raise NotImplementedError

    @classmethod
    def plan_mmseg(cls, state: State, hints: dict) -> ImportPlan:
        """The ResNet backbone, output stride and auxiliary head every CNN architecture shares; the decode head's
        options from `mmseg_head_options`."""
        output_stride = hints.get("output_stride")
        if output_stride is None:  # the weights are the same at every output stride
            raise CheckpointMismatch("the output stride (8 or 16) is not in the checkpoint: it keeps no config text "
                                     "naming the backbone's strides and dilations, and the weights do not show it; "
                                     "pass output_stride=8 or 16")
        if output_stride not in (8, 16):
            raise CheckpointMismatch(f"output stride {output_stride}; supported: 8 and 16")
        backbone, rules = mmseg_resnet(state)
        num_classes = shape(state, "decode_head.conv_seg.weight")[0]
        options: dict = {"output_stride": output_stride}
        aux = any(k.startswith("auxiliary_head.") for k in state)
        options["aux"] = aux
        if aux:
            options["aux_channels"] = shape(state, "auxiliary_head.convs.0.conv.weight")[0]
        options.update(cls.mmseg_head_options(state, hints, output_stride))
        return ImportPlan(cls.arch, backbone, num_classes, options, KeyMap((*rules, *cls.mmseg_key_rules)),
                          (IMAGENET_MEAN, IMAGENET_STD))

    @classmethod
    def mmseg_head_options(cls, state: State, hints: dict, output_stride: int) -> dict:
        """The decode head's options, read from an mmseg checkpoint's shapes and config `hints`."""
        raise NotImplementedError(f"{cls.arch or cls.__name__} does not import mmsegmentation checkpoints")

    def heads(self, feats: list[torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        outs = self.decode(feats, train)
        if train and self.auxiliary_head is not None:
            outs["aux"] = self.auxiliary_head(feats[self.spec.aux])
        return outs
