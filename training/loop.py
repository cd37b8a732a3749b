"""The training loop: set up, then iterate (step, log, validate, checkpoint), then write the model."""

from __future__ import annotations

import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from engine import SegModel, save_model
from engine.precision import autocast
from engine.preprocessing import preprocess
from training.batchnorm import recalibrate_batchnorm
from training.checkpoint import check_fingerprint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from training.config import TrainConfig
from training.data import (
    CropDataset,
    IterationBatches,
    collate,
    focus_weights,
    load_dataset,
    split_named,
    split_validation,
)
from training.distributed import Runtime, any_true, start_runtime, stop_runtime
from training.events import CheckpointEvent, DoneEvent, ErrorEvent, Event, StartEvent, StepEvent, ValidationEvent
from training.finetune import Start, initial_model
from training.losses import segmentation_loss
from training.schedule import build_optimizer, lr_factor, recipe, set_lr
from training.validate import MIN_VAL_IMAGES, evaluate, mark_model_corrections

log = logging.getLogger("training")


class TrainingError(RuntimeError):
    """A run that cannot go on (the loss stays non-finite); the message says what to change."""


@dataclass
class TrainResult:
    model: SegModel
    model_path: Path
    best_path: Path | None
    iterations: int
    best_miou: float | None
    last_metrics: dict | None  # the last validation: miou, pixel_accuracy, per_class_iou, confusion
    wall_time_s: float
    stopped: bool = False
    miou: float | None = None  # the written model's, on the validation images (None: not measurable)
    parent_miou: float | None = None  # the init model's, on the same images in this run
    val_names: list[str] = field(default_factory=list)
    image_errors: dict[str, float] = field(default_factory=dict)  # the written model's share wrong, by image
    parent_image_errors: dict[str, float] = field(default_factory=dict)  # the init model's, same images

    @property
    def last_miou(self) -> float | None:
        return self.last_metrics["miou"] if self.last_metrics else None


@dataclass
class Progress:
    """What a checkpoint carries besides weights and optimiser: where the run is and what it measured."""

    iteration: int = 0
    lr_scale: float = 1.0  # lowered by the non-finite guard
    bad_steps: int = 0
    best_miou: float | None = None
    best_iteration: int | None = None
    last_metrics: dict | None = None
    last_iteration: int | None = None
    parent_miou: float | None = None  # the init model's score at iteration 0, on the same images
    parent_image_errors: dict = field(default_factory=dict)  # and its share of pixels wrong per image
    elapsed_s: float = 0.0  # wall time of the sessions before a resume


class TrainForward(nn.Module):
    """`forward` = the model's `forward_train`, so DistributedDataParallel hooks the training outputs."""

    def __init__(self, model: SegModel):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.forward_train(x)


def train(cfg: TrainConfig, on_event: Callable[[Event], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train per `cfg`, report `Event`s to `on_event` (from the main process only) and write the model.

    `should_stop` is polled once per iteration; when it returns True (in any process) the run stops at the
    end of that iteration, writes the model so far and a checkpoint, and reports "done" with stopped=True.
    Raises (after an "error" event) on bad data, bad settings or divergence.
    """
    rt = start_runtime(cfg.device, cfg.precision)
    emit = on_event if on_event is not None and rt.main else (lambda event: None)
    try:
        return _run(cfg, rt, emit, should_stop or (lambda: False))
    except Exception as exc:
        emit(ErrorEvent(str(exc)))
        raise
    finally:
        stop_runtime(rt)


def _run(cfg: TrainConfig, rt: Runtime, emit: Callable[[Event], None], should_stop: Callable[[], bool]):
    t_start = time.perf_counter()
    _seed(cfg.seed)
    start = initial_model(cfg)
    model = start.model.to(rt.device)
    k = len(start.classes)
    data = load_dataset(cfg.images, cfg.labels, k, seed=cfg.seed)
    notes = list(data.notes)
    if cfg.val_images is not None:
        train_set, val_set = data.samples, load_dataset(cfg.val_images, cfg.val_labels, k, seed=cfg.seed).samples
    elif cfg.val_names:
        train_set, val_set, missing = split_named(data.samples, cfg.val_names)
        if missing:
            notes.append(f"validation images without usable labels, left out: {', '.join(missing[:10])}")
    else:
        train_set, val_set = split_validation(data.samples, cfg.val_fraction)
    measurable = len(val_set) >= MIN_VAL_IMAGES
    if val_set and not measurable:
        notes.append(f"{len(val_set)} validation image: not measurable (it takes {MIN_VAL_IMAGES}); no mIoU")
    for note in notes if rt.main else ():
        log.warning(note)

    r = recipe(cfg, model.arch)
    if cfg.freeze_backbone:
        model.backbone.requires_grad_(False)
    _check_batch(model, cfg, rt)
    if rt.distributed and rt.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        torch.backends.cudnn.benchmark = True
    optimizer = build_optimizer(model, r)
    scaler = torch.amp.GradScaler(rt.device.type, enabled=rt.precision == "fp16")
    fingerprint = _fingerprint(cfg, start, model, train_set, val_set, rt)
    progress = Progress()
    if cfg.init is not None and cfg.focus_names and cfg.correction_crops > 0:  # (before a resume loads weights)
        marked = mark_model_corrections(model, train_set, cfg.focus_names, rt, seed=cfg.seed)
        log.info(f"{marked} corrected images: {cfg.correction_crops:.0%} of their crops centred on a correction")
    if cfg.resume:
        progress = _resume(cfg, model, optimizer, scaler, fingerprint, rt)
    elif rt.rank:
        torch.manual_seed(cfg.seed + 7919 * rt.rank)  # other dropout masks than rank 0's

    net = TrainForward(model)
    if rt.distributed:
        net = DistributedDataParallel(net, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
    batches = IterationBatches(len(train_set), cfg.batch_size, cfg.iterations, cfg.seed, start=progress.iteration,
                               rank=rt.rank, world_size=rt.world_size,
                               weights=focus_weights(train_set, cfg.focus_names, cfg.focus_weight))
    workers = cfg.workers if cfg.workers is not None else (
        min(4, (os.cpu_count() or 1) // rt.world_size) if rt.device.type == "cuda" else 0)
    loader = torch.utils.data.DataLoader(
        CropDataset(train_set, cfg.crop_size, cfg.scale_range, cfg.correction_crops), batch_sampler=batches,
        collate_fn=collate,
        num_workers=workers, pin_memory=rt.device.type == "cuda",
        generator=torch.Generator().manual_seed(cfg.seed),  # leaves the global RNG (dropout) alone
    )
    mean = torch.tensor(start.normalization["mean"], device=rt.device)
    std = torch.tensor(start.normalization["std"], device=rt.device)
    names = [c.name for c in start.classes]
    emit(StartEvent(iterations=cfg.iterations, train_images=len(train_set), val_images=len(val_set),
                    skipped_images=data.skipped, arch=model.arch, backbone=str(model.config.get("backbone")),
                    classes=names, device=str(rt.device), precision=rt.precision,
                    start_iteration=progress.iteration, world_size=rt.world_size))
    counts = {"train_images": len(train_set), "val_images": len(val_set), "skipped_images": data.skipped,
              "val_names": sorted(s.image_path.name for s in val_set)}
    val_interval = cfg.val_interval or max(1, cfg.iterations // 5)
    ckpt_interval = cfg.checkpoint_interval or max(1, cfg.iterations // 10)

    calibrated = None  # the iteration whose BatchNorm statistics were last re-estimated

    def recalibrate(iteration: int) -> None:
        nonlocal calibrated
        if calibrated != iteration:
            recalibrate_batchnorm(model, train_set, rt, mean, std, cfg.crop_size, cfg.batch_size,
                                  limit=cfg.bn_images, seed=cfg.seed)
            calibrated = iteration

    def validate(iteration: int) -> dict:
        if iteration > 0:  # (at 0, a parent model is measured as it came)
            recalibrate(iteration)
        metrics = evaluate(model, val_set, rt)
        emit(ValidationEvent(iteration=iteration, **metrics))
        return metrics

    def measure(it: int) -> None:
        """Validate at iteration `it`; the best model so far is written beside the output."""
        progress.last_metrics, progress.last_iteration = validate(it), it
        miou = progress.last_metrics["miou"]
        if miou is not None and (progress.best_miou is None or miou > progress.best_miou):
            progress.best_miou, progress.best_iteration = miou, it
            if rt.main:
                _write_model(cfg.best_path, model, start, cfg, r, rt, counts, it, progress, elapsed(), best=True)

    def elapsed() -> float:
        return earlier_s + time.perf_counter() - t_start

    def checkpoint() -> None:
        states = _gather(rt, rng_state())
        if rt.main and progress.bad_steps == 0 and _finite(model):  # never a state inside a non-finite streak
            path = save_checkpoint(cfg.checkpoint_dir, {
                "iteration": progress.iteration, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(), "progress": {**asdict(progress), "elapsed_s": elapsed()},
                "rng": states, "fingerprint": fingerprint})
            emit(CheckpointEvent(iteration=progress.iteration, path=str(path)))

    earlier_s = progress.elapsed_s
    if cfg.init is not None and measurable and progress.iteration == 0:
        before = validate(0)
        progress.parent_miou, progress.parent_image_errors = before["miou"], before["image_errors"]
    _train_mode(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    window = _Window(progress.iteration)
    stopped = False
    for images, labels in loader:
        it = progress.iteration
        set_lr(optimizer, lr_factor(it, cfg.iterations, r) * progress.lr_scale)
        x = preprocess(images.to(rt.device, non_blocking=True), mean, std)
        y = labels.to(rt.device, non_blocking=True)
        with autocast(rt.device, rt.precision):
            outputs = net(x)
        loss, _ = segmentation_loss(outputs, y)
        loss_value = loss.item()
        stop, bad = any_true(rt, should_stop(), not math.isfinite(loss_value))
        scaler.scale(loss).backward()
        if not bad:
            scaler.unscale_(optimizer)
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip or math.inf)
            bad = not scaler.is_enabled() and not math.isfinite(norm.item())  # (fp16: the scaler skips it)
        if bad:
            optimizer.zero_grad(set_to_none=True)
            _non_finite(cfg, progress, it, optimizer)
        else:
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            progress.bad_steps = 0
            window.add(loss_value)
        progress.iteration = it = it + 1

        if it % cfg.log_interval == 0 or it in (1, cfg.iterations):
            emit(window.event(it, cfg.iterations, optimizer.param_groups[0]["lr"], elapsed(),
                              cfg.batch_size * rt.world_size))
        if measurable and (it % val_interval == 0 or it == cfg.iterations):
            measure(it)
            window.restart(it)
        if (it % ckpt_interval == 0 and it < cfg.iterations) or (stop and it < cfg.iterations):
            checkpoint()
            window.restart(it)
        if stop and it < cfg.iterations:
            stopped = True
            break

    if progress.iteration > 0:
        recalibrate(progress.iteration)
    if measurable and progress.iteration > 0 and progress.last_iteration != progress.iteration:
        measure(progress.iteration)  # stopped between validations: the written model is scored too
    wall = elapsed()
    if rt.main:
        _write_model(cfg.out, model, start, cfg, r, rt, counts, progress.iteration, progress, wall, stopped=stopped)
        if not stopped:
            shutil.rmtree(cfg.checkpoint_dir, ignore_errors=True)
    best_path = cfg.best_path if progress.best_iteration is not None else None
    miou = result_miou(progress)
    errors = dict(progress.last_metrics.get("image_errors") or {}) if miou is not None else {}
    val_names = sorted(s.image_path.name for s in val_set)
    result = TrainResult(model, cfg.out, best_path, progress.iteration, progress.best_miou, progress.last_metrics,
                         wall, stopped, miou=miou, parent_miou=progress.parent_miou, val_names=val_names,
                         image_errors=errors, parent_image_errors=dict(progress.parent_image_errors))
    emit(DoneEvent(iteration=progress.iteration, model_path=str(cfg.out), best_path=str(best_path) if best_path
                   else None, best_miou=progress.best_miou, last_miou=result.last_miou, wall_time_s=round(wall, 3),
                   stopped=stopped, miou=miou, parent_miou=progress.parent_miou, val_names=val_names,
                   image_errors=errors, parent_image_errors=dict(progress.parent_image_errors)))
    return result


def result_miou(progress: Progress) -> float | None:
    """The written model's score: the last validation's, when it was of the final iteration."""
    if progress.last_metrics is None or progress.last_iteration != progress.iteration:
        return None
    return progress.last_metrics["miou"]


class _Window:
    """Loss and speed since the last step event."""

    def __init__(self, iteration: int):
        self.restart(iteration)

    def restart(self, iteration: int) -> None:
        self.start_iteration, self.start_time, self.losses = iteration, time.perf_counter(), []

    def add(self, loss: float) -> None:
        self.losses.append(loss)

    def event(self, it: int, iterations: int, lr: float, elapsed: float, images_per_iteration: int) -> StepEvent:
        seconds = max(time.perf_counter() - self.start_time, 1e-9)
        per_iteration = seconds / max(it - self.start_iteration, 1)
        loss = float(np.mean(self.losses)) if self.losses else math.nan
        event = StepEvent(iteration=it, iterations=iterations, loss=loss, lr=lr, elapsed_s=round(elapsed, 3),
                          eta_s=round(per_iteration * (iterations - it), 3),
                          images_per_s=round(images_per_iteration / per_iteration, 3))
        self.restart(it)
        return event


def _non_finite(cfg: TrainConfig, progress: Progress, it: int, optimizer: torch.optim.Optimizer) -> None:
    """Skip the step and halve the rate; after `max_bad_steps` in a row, stop."""
    progress.bad_steps += 1
    progress.lr_scale *= 0.5
    lr = optimizer.param_groups[0]["lr"]
    log.warning(f"iteration {it + 1}: non-finite loss or gradients; step skipped, learning rate x0.5 (was {lr:.3g})")
    if progress.bad_steps >= cfg.max_bad_steps:
        kept = [str(p) for p in (cfg.checkpoint_dir, cfg.best_path) if p.exists()]
        raise TrainingError(
            f"the loss stayed non-finite for {progress.bad_steps} iterations in a row (up to iteration {it + 1}) "
            f"although the learning rate was lowered to {lr * 0.5:.3g}; the model diverged. Try a lower --lr "
            f"(SETR is known to diverge at larger rates) or fp32 precision. "
            + (f"Last good state kept: {', '.join(kept)}." if kept else "No model was written.")
        )


def _write_model(path: Path, model: SegModel, start: Start, cfg: TrainConfig, r, rt: Runtime, counts: dict,
                 iteration: int, progress: Progress, wall: float, *, best: bool = False, stopped: bool = False,
                 ) -> None:
    metrics = progress.last_metrics if not best or progress.last_iteration == iteration else None
    metrics = {k: v for k, v in (metrics or {}).items() if k not in ("confusion", "image_errors")} or None
    record = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "arch": model.arch, "backbone": model.config.get("backbone"),
        "iterations": iteration, **counts, "batch_size": cfg.batch_size, "world_size": rt.world_size,
        "crop_size": cfg.crop_size, "optimizer": r.optimizer, "lr": r.lr, "precision": rt.precision,
        "device": rt.device.type, "init": start.parent["name"] if start.parent else None,
        "metrics": metrics, "best_miou": progress.best_miou, "stopped": stopped,
        "miou": metrics["miou"] if metrics and progress.last_iteration == iteration else None,
        "parent_miou": progress.parent_miou,
        "wall_time_s": round(wall, 3),
    }
    save_model(path, model, classes=start.classes, normalization=start.normalization, crop_size=cfg.crop_size,
               parent=start.parent, history=[*(start.history or []), record])


def _resume(cfg: TrainConfig, model: SegModel, optimizer, scaler, fingerprint: dict, rt: Runtime) -> Progress:
    payload = load_checkpoint(cfg.checkpoint_dir)
    check_fingerprint(cfg.checkpoint_dir, payload["fingerprint"], fingerprint)
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scaler.load_state_dict(payload["scaler"])
    set_rng_state(payload["rng"][rt.rank])
    progress = Progress(**payload["progress"])
    log.info(f"resuming at iteration {progress.iteration} of {cfg.iterations} from {cfg.checkpoint_dir}")
    return progress


def _fingerprint(cfg: TrainConfig, start: Start, model: SegModel, train_set, val_set, rt: Runtime) -> dict:
    """What must not change between a run and its resumption."""
    return {
        "config": dict(model.config), "classes": [c.name for c in start.classes],
        "init": start.parent["sha256"] if start.parent else None,
        "iterations": cfg.iterations, "batch_size": cfg.batch_size, "crop_size": cfg.crop_size,
        "seed": cfg.seed, "optimizer": cfg.optimizer, "lr": cfg.lr, "freeze_backbone": cfg.freeze_backbone,
        "world_size": rt.world_size, "bn_images": cfg.bn_images,
        "focus": [sorted(cfg.focus_names), cfg.focus_weight, cfg.correction_crops] if cfg.focus_names else None,
        "train": sorted(s.name for s in train_set), "val": sorted(s.name for s in val_set),
    }


def _check_batch(model: SegModel, cfg: TrainConfig, rt: Runtime) -> None:
    """One crop per process cannot train BatchNorm (DeepLabV3+'s image pooling sees one value per channel)."""
    if cfg.batch_size >= 2 or (rt.distributed and rt.device.type == "cuda"):  # (SyncBatchNorm pools processes)
        return
    frozen = set(model.backbone.modules()) if cfg.freeze_backbone else set()
    bn = [n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m not in frozen]
    if bn:
        raise ValueError(f"batch size 1: {model.arch} has BatchNorm layers ({bn[0]}, ...) that cannot train on a "
                         f"single crop; use a batch size of 2 or more")


def _train_mode(model: SegModel, cfg: TrainConfig) -> None:
    model.train()
    if cfg.freeze_backbone:
        model.backbone.eval()  # frozen means its BatchNorm statistics too


def _finite(model: SegModel) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _gather(rt: Runtime, obj) -> list:
    if not rt.distributed:
        return [obj]
    out = [None] * rt.world_size
    dist.all_gather_object(out, obj)
    return out


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
