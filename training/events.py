"""What a training run reports, as dataclasses; `to_json` gives the JSON-lines form (with an "event" key)."""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import ClassVar


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = ""

    def to_dict(self) -> dict:
        return {"event": self.kind, **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(_finite(self.to_dict()), separators=(",", ":"))


@dataclass(frozen=True)
class StartEvent(Event):
    kind: ClassVar[str] = "start"
    iterations: int
    train_images: int
    val_images: int
    skipped_images: int
    arch: str
    backbone: str
    classes: list[str]
    device: str
    precision: str
    start_iteration: int = 0  # > 0 when resuming
    world_size: int = 1


@dataclass(frozen=True)
class StepEvent(Event):
    kind: ClassVar[str] = "step"
    iteration: int
    iterations: int
    loss: float
    lr: float
    elapsed_s: float
    eta_s: float
    images_per_s: float


@dataclass(frozen=True)
class ValidationEvent(Event):
    kind: ClassVar[str] = "validation"
    iteration: int
    miou: float | None
    pixel_accuracy: float | None
    per_class_iou: list[float | None]
    confusion: list[list[int]]
    image_errors: dict[str, float] = field(default_factory=dict)  # each image's share of pixels wrong, by name


@dataclass(frozen=True)
class CheckpointEvent(Event):
    kind: ClassVar[str] = "checkpoint"
    iteration: int
    path: str


@dataclass(frozen=True)
class DoneEvent(Event):
    kind: ClassVar[str] = "done"
    iteration: int
    model_path: str
    best_path: str | None
    best_miou: float | None
    last_miou: float | None
    wall_time_s: float
    stopped: bool = False
    miou: float | None = None  # the written model's, on the validation images (None: fewer than 2)
    parent_miou: float | None = None  # the init model's, on the same images in the same run
    val_names: list[str] = field(default_factory=list)  # the validation images' file names
    image_errors: dict[str, float] = field(default_factory=dict)  # the written model's share of pixels wrong, by image
    parent_image_errors: dict[str, float] = field(default_factory=dict)  # the init model's, on the same images


@dataclass(frozen=True)
class ErrorEvent(Event):
    kind: ClassVar[str] = "error"
    message: str


EVENT_TYPES = {cls.kind: cls for cls in (StartEvent, StepEvent, ValidationEvent, CheckpointEvent, DoneEvent,
                                         ErrorEvent)}


class EventParseError(ValueError):
    """A dict that is not one of the events; the message says why."""


def parse_event(data: dict) -> Event:
    """The event a `to_dict`/`to_json` result describes.

    Keys the dataclass does not know (fields a newer trainer added) are ignored; a missing field that has
    no default, an unknown or absent `"event"` kind, or a non-dict raise `EventParseError`.
    """
    if not isinstance(data, dict):
        raise EventParseError(f"an event is a JSON object, got {type(data).__name__}")
    kind = data.get("event")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EventParseError(f"unknown event kind {kind!r} (known: {', '.join(EVENT_TYPES)})")
    known = fields(cls)
    missing = [f.name for f in known if f.name not in data and f.default is MISSING
               and f.default_factory is MISSING]
    if missing:
        raise EventParseError(f"{kind} event without {', '.join(missing)}")
    return cls(**{f.name: data[f.name] for f in known if f.name in data})


event_from_dict = parse_event  # the earlier name


def _finite(value):
    """JSON has no NaN/Infinity: non-finite floats become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
