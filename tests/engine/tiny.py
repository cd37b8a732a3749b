"""Tiny configurations of every architecture (each class's `test_config`), so each test runs on a CPU in
seconds."""

import engine
from engine.registry import architecture_class

TINY = {name: architecture_class(name).test_config for name in engine.list_architectures()}


def tiny_model(name: str, num_classes: int = 3, **overrides) -> engine.SegModel:
    return engine.create_model(name, num_classes, **{**TINY[name], **overrides})
