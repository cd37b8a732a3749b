"""Tiny configurations of every architecture, so each test runs on a CPU in seconds."""

import engine

TINY = {
    "deeplabv3plus": dict(backbone="test_resnet", output_stride=8, channels=16, c1_channels=8, aux_channels=8),
    "encnet": dict(backbone="test_resnet", channels=16, num_codes=4, aux_channels=8),
    "ccnet": dict(backbone="test_resnet", channels=16, aux_channels=8),
}


def tiny_model(name: str, num_classes: int = 3, **overrides) -> engine.SegModel:
    return engine.create_model(name, num_classes, **{**TINY[name], **overrides})
