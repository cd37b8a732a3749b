"""Tiny configurations of every architecture, so each test runs on a CPU in seconds."""

import engine

TINY = {
    "deeplabv3plus": dict(backbone="test_resnet", output_stride=8, channels=16, c1_channels=8, aux_channels=8),
    "encnet": dict(backbone="test_resnet", channels=16, num_codes=4, aux_channels=8),
    "ccnet": dict(backbone="test_resnet", channels=16, aux_channels=8),
    # test_vit: 6 blocks of width 64, 2 heads, patch 16; the papers' layers scaled from 24 blocks to 6.
    "setr_naive": dict(backbone="test_vit", channels=16, aux_indices=(2, 3, 4)),
    "setr_pup": dict(backbone="test_vit", channels=16, aux_indices=(2, 3, 4, 5)),
    "setr_mla": dict(backbone="test_vit", mla_indices=(1, 2, 4, 5), mla_channels=16, mlahead_channels=8),
    # Without stochastic depth, so that a training step reaches every parameter every time.
    "segmenter_linear": dict(backbone="test_vit", drop_path_rate=0.0),
    "segmenter_mask": dict(backbone="test_vit", drop_path_rate=0.0),
}


def tiny_model(name: str, num_classes: int = 3, **overrides) -> engine.SegModel:
    return engine.create_model(name, num_classes, **{**TINY[name], **overrides})
