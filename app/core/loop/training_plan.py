"""What a training run will be: the Training panel's choice and the project turned into one `TrainConfig`.

The app's Training panel and the simulated annotator (`bench.annotator`) both call `plan_training`, so a
run the benchmark measures is the run a person starts. It holds the loop's defaults: how many
iterations a new model and a fine-tune get for the labelled images at hand, and how much more often a
fine-tune draws the images corrected since its parent was trained.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from training.arguments import parse_option
from training.config import TrainConfig

MODES = ("new", "finetune")

# A new model: iterations per labelled image, within bounds (from scratch, small data sets).
NEW_ITERS_PER_IMAGE = 40
NEW_ITERS = (400, 2000)
# A fine-tune: a short run sized to the data, most of it on the newly corrected images. Measured with the
# simulated annotator on camvid-mini from ImageNet weights, the first model after 5 images, alone on the
# 2-core CPU (README, "Tuning the loop"): twice the iterations the schedules gave before (new models from
# 200, fine-tunes 3 per image + 10 per new one) lowered R from 0.659 to 0.634 (0.718 to 0.701 strict), and
# the six trainings took 18.5 minutes instead of 13.9, within the 30 the loop may spend on 60 images.
FINETUNE_ITERS_PER_IMAGE = 6
FINETUNE_ITERS_PER_NEW_IMAGE = 20
FINETUNE_ITERS = (100, 800)
FOCUS_WEIGHT = 3.0
LOG_POINTS = 100  # step events per run
# Each validation re-estimates BatchNorm statistics and predicts every validation image: on a CPU it costs
# as much as tens of iterations. A new model is scored three times (its curve in the panel); a fine-tune
# at its end only, beside its parent's score at its start.
NEW_VALIDATIONS = 3
# A new model from ImageNet (or other pretrained) backbone weights, and a fine-tune of one, trains with AdamW:
# the pretrained encoder at 1e-4, the heads at 10x. Measured with `bench.pretrained_recipe` on camvid-mini
# (DeepLabV3+ / EfficientNet-Lite0 from ImageNet, 40 training images, 300 iterations, crop 128, batch 8; README):
# mIoU 0.382, pixel accuracy 0.805, R 0.692 on the 20 validation images, where SGD at 0.01 (the from-scratch
# recipe, still the default from random weights) gave 0.353, 0.781 and 0.773. The person's learning rate,
# when set, keeps the architecture's SGD recipe.
PRETRAINED_RECIPE = {"optimizer": "adamw", "lr": 1e-4, "head_lr_mult": 10.0}


@dataclass(frozen=True)
class TrainingChoice:
    """What the person chose in the Training panel; `iters=None` sizes the run to the data."""

    mode: str = "new"
    arch: str | None = None
    backbone: str | None = None
    options: Mapping = field(default_factory=dict)
    pretrained: bool | str = False
    iters: int | None = None
    crop: int = 256
    batch: int = 4
    lr: float | None = None
    device: str = "auto"
    precision: str = "auto"
    focus_weight: float = FOCUS_WEIGHT

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"training mode must be one of {', '.join(MODES)}, got {self.mode!r}")

    @classmethod
    def from_settings(cls, settings: Mapping) -> TrainingChoice:
        """From the panel's settings dict (options as `key=value` strings or a dict; unknown keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in settings.items() if k in names and v is not None}
        options = values.get("options", {})
        if not isinstance(options, Mapping):
            options = dict(parse_option(o) for o in options)
        values["options"] = dict(options)
        if not values.get("iters"):
            values["iters"] = None  # 0 or absent: sized to the data
        return cls(**values)


def new_model_iterations(labelled: int) -> int:
    """Iterations of a model trained from scratch on `labelled` images."""
    lo, hi = NEW_ITERS
    return int(min(hi, max(lo, NEW_ITERS_PER_IMAGE * labelled)))


def finetune_iterations(labelled: int, new: int) -> int:
    """Iterations of a fine-tune on `labelled` images of which `new` were corrected since the parent."""
    lo, hi = FINETUNE_ITERS
    return int(min(hi, max(lo, FINETUNE_ITERS_PER_IMAGE * labelled + FINETUNE_ITERS_PER_NEW_IMAGE * new)))


def starts_pretrained(choice: TrainingChoice, init: Path | None) -> bool:
    """Whether the run starts from pretrained backbone weights: a new model from ImageNet weights or a weights
    file, or a fine-tune of a model whose file records such a start (any `backbone_weights` but random)."""
    if choice.mode != "finetune":
        return bool(choice.pretrained)
    if init is None or not Path(init).is_file():
        return False  # the training run reports a missing model file itself
    from engine import read_model_metadata

    return read_model_metadata(init).get("backbone_weights") not in (None, "random")


def plan_training(choice: TrainingChoice | Mapping, *, images: Path, labels: Path, classes: Sequence,
                  out: Path, labelled: int, init: Path | None = None, val_names: Iterable[str] = (),
                  focus_names: Iterable[str] = ()) -> TrainConfig:
    """The run for `choice` on a project: its image folder, label folder and classes, `labelled` images.

    A fine-tune (`choice.mode == "finetune"`) starts from `init`, the current model file, and keeps its
    architecture; a new model is the chosen architecture from random (or pretrained) backbone weights.
    `val_names` are the images every version is scored on (kept out of training); `focus_names` the
    images corrected since `init` was trained, drawn `choice.focus_weight` times as often.
    A start from pretrained weights (`starts_pretrained`) gets `PRETRAINED_RECIPE` unless the person set the
    learning rate. Paths come out absolute (the training process runs in another folder).
    """
    if not isinstance(choice, TrainingChoice):
        choice = TrainingChoice.from_settings(choice)
    finetune = choice.mode == "finetune"
    if finetune and init is None:
        raise ValueError("fine-tuning needs the current model file (init); there is none")
    val_names = tuple(dict.fromkeys(val_names))
    held_out = set(val_names) | {Path(n).stem for n in val_names}  # focus names may be stems, val names files
    focus = tuple(n for n in dict.fromkeys(focus_names) if n not in held_out) if finetune else ()
    train_images = max(labelled - len(val_names), 1)
    if choice.iters:
        iterations = int(choice.iters)
    elif finetune:
        iterations = finetune_iterations(train_images, len(focus))
    else:
        iterations = new_model_iterations(train_images)
    settings = dict(
        images=Path(images).resolve(), labels=Path(labels).resolve(), out=Path(out).resolve(),
        classes=tuple(classes), iterations=iterations, crop_size=choice.crop, batch_size=choice.batch, lr=choice.lr,
        device=choice.device, precision=choice.precision, log_interval=max(1, iterations // LOG_POINTS),
        focus_names=focus, focus_weight=choice.focus_weight,
        val_interval=iterations if finetune else max(1, iterations // NEW_VALIDATIONS),
    )
    if choice.lr is None and starts_pretrained(choice, init):
        settings.update(PRETRAINED_RECIPE)
    if finetune:
        settings["init"] = Path(init).resolve()
    else:
        settings.update(arch=choice.arch, backbone=choice.backbone, model_options=dict(choice.options),
                        pretrained=choice.pretrained)
    return TrainConfig(**settings, val_names=val_names)


def changed_since(label_paths: Iterable[Path], model: Path | None) -> list[str]:
    """The stems of the label files written after `model` was (all, without a model): the new corrections."""
    paths = [Path(p) for p in label_paths]
    if model is None or not Path(model).exists():
        return [p.stem for p in paths if p.exists()]
    written = Path(model).stat().st_mtime
    return [p.stem for p in paths if p.exists() and p.stat().st_mtime > written]
