"""SegAssist's training: fine-tune any architecture on (partially) labelled images. No Qt in here."""

from training.config import TrainConfig
from training.data import DataError
from training.events import (
    CheckpointEvent,
    DoneEvent,
    ErrorEvent,
    Event,
    StartEvent,
    StepEvent,
    ValidationEvent,
    event_from_dict,
)
from training.loop import TrainingError, TrainResult, train

__all__ = [
    "CheckpointEvent",
    "DataError",
    "DoneEvent",
    "ErrorEvent",
    "Event",
    "StartEvent",
    "StepEvent",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "ValidationEvent",
    "event_from_dict",
    "train",
]
