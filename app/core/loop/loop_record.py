"""What the loop keeps in `segassist.json` besides statuses: the validation images every version is scored
on, and per reviewed image what the person changed in the proposal and how long it took.

    "loop": {
      "validation": ["b.png", "f.png"],     # chosen by `pick_validation` over reviewed images, only grown
      "added": [], "excluded": [],           # the person's own changes to that choice
      "seconds": {"a.png": 41.5},            # time each image has been open (idle stretches capped)
      "corrections": {"a.png": {"model": "deeplabv3plus-v2.safetensors", "regions": 3, "boundary_px": 120,
                                "wrong_px": 410, "labelled_px": 1920, "seconds": 41.5, "min_region": 1,
                                "reviewed": "2026-01-01T12:00:00+00:00", "forgiven_px": 95, "tolerance": 2}}
    }

`wrong_px`, `regions` and `boundary_px` are `app.core.loop.effort.effort(final_label, proposal, tolerance=2)`:
the labelled pixels the final label gives another class than the proposal, and the connected regions
the person had to draw, without the `forgiven_px` changes that only moved a boundary by up to
`tolerance` px (the simulated annotator's unit; records written before the tolerance have none and
read as `tolerance` 0). An image reviewed without a proposal was labelled by hand (`model` null, every
region of the label counted).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np

from app.core.loop.effort import TOLERANCE, effort
from app.core.loop.validation_split import MINIMUM, leaves_enough_to_train, pick_validation

MIN_REGION = 1  # regions of any size count (pixels are counted exactly either way)
IDLE_CAP_S = 120.0  # a stretch without an edit counts at most this long (the person was elsewhere)
NOT_MEASURABLE = f"not measurable yet (fewer than {MINIMUM} reviewed images for validation)"


def score_text(miou: float | None, images: int | None) -> str:
    """A version's score as every view shows it: "mIoU 0.712 on 3 images", or why there is none."""
    if miou is None:
        return f"mIoU {NOT_MEASURABLE}"
    return f"mIoU {miou:.3f}" + (f" on {images} images" if images else "")


@dataclass
class Correction:
    """What the person changed in one image's proposal before marking it reviewed."""

    model: str | None  # the model file whose proposal the image started from; None: labelled by hand
    regions: int
    boundary_px: int
    wrong_px: int
    labelled_px: int
    seconds: float
    min_region: int = MIN_REGION
    reviewed: str = ""
    forgiven_px: int = 0  # changed pixels within the boundary tolerance: not counted in regions and boundary
    tolerance: int = TOLERANCE

    @property
    def changed_fraction(self) -> float:
        return self.wrong_px / self.labelled_px if self.labelled_px else 0.0

    @classmethod
    def from_json(cls, d: dict) -> Correction:
        if not isinstance(d, dict):
            raise ValueError(f"a correction record must be an object, found {type(d).__name__}")
        return cls(model=None if d.get("model") is None else str(d["model"]), regions=int(d["regions"]),
                   boundary_px=int(d["boundary_px"]), wrong_px=int(d["wrong_px"]), labelled_px=int(d["labelled_px"]),
                   seconds=float(d.get("seconds", 0.0)), min_region=int(d.get("min_region", MIN_REGION)),
                   reviewed=str(d.get("reviewed", "")), forgiven_px=int(d.get("forgiven_px", 0)),
                   tolerance=int(d.get("tolerance", 0)))


def correction(final_labels: np.ndarray, proposal: np.ndarray | None, *, model: str | None,
               seconds: float) -> Correction:
    """The record of an image reviewed with `final_labels`, which started from `proposal` (or from nothing)."""
    e = effort(final_labels, proposal, min_region=MIN_REGION, tolerance=TOLERANCE)
    return Correction(model=model if proposal is not None else None, regions=e.regions, boundary_px=e.boundary_px,
                      wrong_px=e.wrong_px, labelled_px=e.labelled_px, seconds=round(float(seconds), 1),
                      reviewed=datetime.now(UTC).isoformat(timespec="seconds"), forgiven_px=e.forgiven_px,
                      tolerance=TOLERANCE)


@dataclass
class LoopRecord:
    """The validation set and the correction records of a project."""

    validation: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    corrections: dict[str, Correction] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d) -> LoopRecord:
        """From the project file's "loop" object (absent: empty); raises ValueError saying what is wrong."""
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise ValueError(f"'loop' must be an object, found {type(d).__name__}")
        names = {}
        for key in ("validation", "added", "excluded"):
            value = d.get(key) or []
            if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
                raise ValueError(f"loop.{key} must be a list of image names")
            names[key] = list(value)
        seconds = d.get("seconds") or {}
        corrections = d.get("corrections") or {}
        if not isinstance(seconds, dict) or not isinstance(corrections, dict):
            raise ValueError("loop.seconds and loop.corrections must be objects keyed by image name")
        try:
            return cls(**names, seconds={str(k): float(v) for k, v in seconds.items()},
                       corrections={str(k): Correction.from_json(v) for k, v in corrections.items()})
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"loop: {exc}") from exc

    def to_json(self) -> dict:
        return {"validation": list(self.validation), "added": list(self.added), "excluded": list(self.excluded),
                "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
                "corrections": {k: asdict(c) for k, c in self.corrections.items()}}

    # -- the validation set ---------------------------------------------------------------------------
    def update_validation(self, reviewed: list[str], labelled: list[str]) -> list[str]:
        """Grow the validation set from the `reviewed` images (and the person's additions among `labelled`)
        and return it, new members the most recently reviewed (by the time recorded for each; images with
        none, and ties, in the order given). It only changes when the result holds at least `MINIMUM` images
        and leaves at least as many labelled images to train on; until then it stays as it was."""
        pool = set(labelled)
        order = {n: i for i, n in enumerate(reviewed)}
        when = {n: c.reviewed for n, c in self.corrections.items()}
        ordered = sorted((n for n in reviewed if n in pool), key=lambda n: (when.get(n, ""), order[n]))
        candidates = ordered + [n for n in self.added if n in pool]
        chosen = pick_validation(candidates, self.validation, excluded=self.excluded, recent_first=True)
        chosen = sorted(set(chosen) | {n for n in self.added if n in pool})
        if len(chosen) >= MINIMUM and leaves_enough_to_train(len(pool), len(chosen)):
            self.validation = chosen
        return list(self.validation)

    def run_names(self, labelled: list[str]) -> list[str]:
        """The validation images of a run: the set's labelled members, when they are enough to measure and
        leave at least as many images to train on (else none: the run trains on every labelled image)."""
        pool = set(labelled)
        names = [n for n in self.validation if n in pool]
        return names if len(names) >= MINIMUM and leaves_enough_to_train(len(pool), len(names)) else []

    def set_member(self, name: str, member: bool) -> None:
        """The person puts an image into the validation set or takes it out (for good)."""
        if member:
            self.excluded = [n for n in self.excluded if n != name]
            if name not in self.added:
                self.added.append(name)
            if name not in self.validation:
                self.validation = sorted([*self.validation, name])
        else:
            self.added = [n for n in self.added if n != name]
            self.validation = [n for n in self.validation if n != name]
            if name not in self.excluded:
                self.excluded.append(name)

    # -- time and corrections -------------------------------------------------------------------------
    def add_seconds(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + max(0.0, float(seconds))

    def by_version(self) -> dict[str | None, list[tuple[str, Correction]]]:
        """The correction records grouped by the model version the proposals came from, in review order."""
        out: dict[str | None, list[tuple[str, Correction]]] = {}
        for name, c in sorted(self.corrections.items(), key=lambda kv: (kv[1].reviewed, kv[0])):
            out.setdefault(c.model, []).append((name, c))
        return out


class ActivityClock:
    """Seconds spent on an image: the time between its opening, each edit and its closing, with each
    stretch capped at `IDLE_CAP_S` (an image left open overnight is not a night's work)."""

    def __init__(self, now: float):
        self.last = now
        self.total = 0.0

    def tick(self, now: float) -> None:
        self.total += min(max(0.0, now - self.last), IDLE_CAP_S)
        self.last = now

    def take(self, now: float) -> float:
        """The seconds since the last `take` (or the opening), ticking to `now`."""
        self.tick(now)
        seconds, self.total = self.total, 0.0
        return seconds
