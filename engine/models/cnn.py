"""What the CNN architectures share: a dilated timm backbone, its normalisation, the auxiliary FCN head."""

from __future__ import annotations

import torch

from engine.layers import FCNHead
from engine.models.base import OptimizerDefaults, SegModel
from engine.timm_backbones import backbone_normalization, create_cnn_backbone


class CNNSegModel(SegModel):
    """A dilated CNN backbone (`self.spec` says which features are where) and an auxiliary FCN head on the
    penultimate stage. Subclasses build `decode_head` and implement `decode`."""

    family = "cnn"
    encoder_family = "cnn"
    small_backbones = ("resnet18", "mobilenetv3_large_100")
    # mmseg's ResNet-D8 recipe: SGD lr 0.01, momentum 0.9, weight decay 5e-4, no warm-up.
    optimizer_defaults = OptimizerDefaults(sgd_lr=0.01, weight_decay=5e-4)

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

    def heads(self, feats: list[torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        outs = self.decode(feats, train)
        if train and self.auxiliary_head is not None:
            outs["aux"] = self.auxiliary_head(feats[self.spec.aux])
        return outs
