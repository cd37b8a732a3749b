"""What a training run is: data, model, schedule, precision, outputs."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

from engine import SegClass
from training import outputs

OPTIMIZERS = ("sgd", "adamw")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig:
    """A training run. `None` means "the default for this architecture family" (see `schedule.defaults`).

    `batch_size` is per process (per GPU under torchrun). `classes` may be omitted when `init` is given
    (the init model's classes are kept); when both are given the list must begin with the init model's
    classes, the extra ones being new classes.
    """

    images: Path
    labels: Path
    out: Path
    classes: tuple[SegClass, ...] | None = None
    val_images: Path | None = None
    val_labels: Path | None = None
    val_fraction: float = 0.0
    val_names: tuple[str, ...] = ()  # images (file names or stems) of `images` held out for validation
    focus_names: tuple[str, ...] = ()  # images (file names or stems) drawn `focus_weight` times as often
    focus_weight: float = 3.0
    # With `init` and `focus_names`: the share of a focus image's crops centred on a pixel the init model
    # labelled wrong (a correction the person made), so a short fine-tune spends its crops on the changes.
    correction_crops: float = 0.5
    # model
    arch: str | None = None  # default: the init model's, else "deeplabv3plus"
    backbone: str | None = None
    model_options: dict = field(default_factory=dict)
    init: Path | None = None
    pretrained: bool | str = False
    freeze_backbone: bool = False
    # schedule
    iterations: int = 1000
    batch_size: int = 8
    crop_size: int = 512
    optimizer: str = "sgd"
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float = 0.9
    head_lr_mult: float | None = None
    warmup_iters: int | None = None
    poly_power: float = 0.9
    min_lr_ratio: float = 0.01
    grad_clip: float | None = 10.0
    scale_range: tuple[float, float] = (0.5, 2.0)
    # runtime
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    workers: int | None = None  # data loader processes; default 0 on CPU, up to 4 per GPU
    resume: bool = False
    log_interval: int = 10
    val_interval: int | None = None  # default: a fifth of the run
    checkpoint_interval: int | None = None  # default: a tenth of the run
    max_bad_steps: int = 5
    bn_images: int = 64  # training images whose whole views re-estimate BatchNorm statistics (0: keep them)

    def __post_init__(self) -> None:
        object.__setattr__(self, "focus_names", tuple(self.focus_names))
        for name in ("images", "labels", "out", "val_images", "val_labels", "init"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if isinstance(self.val_names, str):
            raise TypeError("val_names must be a sequence of image names, not one string")
        object.__setattr__(self, "val_names", tuple(str(n) for n in self.val_names))
        if self.classes is not None:
            from engine import as_classes

            object.__setattr__(self, "classes", tuple(as_classes(self.classes)))
        problems = []
        if self.iterations < 1:
            problems.append(f"iterations must be >= 1, got {self.iterations}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.crop_size < 8:
            problems.append(f"crop_size must be >= 8, got {self.crop_size}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            problems.append(f"val_fraction must lie in [0, 1), got {self.val_fraction}")
        if self.val_names and (self.val_images is not None or self.val_fraction > 0):
            problems.append("val_names is a validation set of its own: give it without val_images or val_fraction")
        if (self.val_images is None) != (self.val_labels is None):
            problems.append("val_images and val_labels go together")
        if self.lr is not None and not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.correction_crops <= 1.0:
            problems.append(f"correction_crops must lie in [0, 1], got {self.correction_crops}")
        if not (math.isfinite(self.focus_weight) and self.focus_weight > 0):
            problems.append(f"focus_weight must be > 0, got {self.focus_weight}")
        if self.bn_images < 0:
            problems.append(f"bn_images must be >= 0, got {self.bn_images}")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            problems.append(f"scale_range must be 0 < low <= high, got {self.scale_range}")
        if self.classes is None and self.init is None:
            problems.append("give the classes, or an init model whose classes are kept")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def argument_parser(cls, **kw) -> argparse.ArgumentParser:
        """The command line's parser: one flag per field (see `training.arguments`)."""
        from training.arguments import build_parser

        return build_parser(cls, **kw)

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> TrainConfig:
        """The config that `argument_parser().parse_args(...)` describes."""
        from training.arguments import from_namespace

        return from_namespace(cls, args)

    @classmethod
    def from_args(cls, argv: list[str]) -> TrainConfig:
        """The config that command-line arguments describe; raises `UsageError`/`ValueError` naming the problem."""
        from training.arguments import from_args

        return from_args(cls, argv)

    def to_args(self) -> list[str]:
        """The command-line arguments that `from_args` turns back into this config (defaults left out)."""
        from training.arguments import to_args

        return to_args(self)

    @property
    def checkpoint_dir(self) -> Path:
        """Where resumable checkpoints go: beside the output, `<out>.ckpt/` (`training.outputs`)."""
        return outputs.checkpoint_dir(self.out)

    @property
    def best_path(self) -> Path:
        """Where the best model by validation mIoU goes: `<stem>.best<suffix>` beside the output."""
        return outputs.best_path(self.out)
