"""SegAssist's training: fine-tune any architecture on (partially) labelled images. No Qt in here.

Names are imported on first use, so `import training.config` and `import training.events` (used by the
app to describe a run and to read its events) do not pay for torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "training.config": ("TrainConfig",),
    "training.data": ("DataError",),
    "training.events": ("CheckpointEvent", "DoneEvent", "ErrorEvent", "Event", "EventParseError", "StartEvent",
                        "StepEvent", "ValidationEvent", "event_from_dict", "parse_event"),
    "training.loop": ("TrainingError", "TrainResult", "train"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'training' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
