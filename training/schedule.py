"""Optimiser settings per architecture family, parameter groups and the learning-rate schedule."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine import SegModel
from engine.registry import architecture_class
from training.config import TrainConfig

# SGD defaults live on each model class (`optimizer_defaults`, from the papers and mmsegmentation's configs;
# SETR is known to diverge above its rates, and the loop's non-finite guard lowers the rate if it happens).
ADAMW_LR = 1e-4
ADAMW_WEIGHT_DECAY = 0.01
MAX_WARMUP = 1500
NO_DECAY_NAMES = ("pos_embed", "cls_token", "cls_emb")


@dataclass(frozen=True)
class Recipe:
    """Resolved optimiser settings: the config's values, family defaults where it left them out."""

    optimizer: str
    lr: float
    weight_decay: float
    head_lr_mult: float
    warmup_iters: int
    momentum: float
    poly_power: float
    min_lr_ratio: float


def family(arch: str) -> str:
    """"setr", "segmenter" (ViT encoders) or "cnn": the architecture class's `family`."""
    return architecture_class(arch).family


def recipe(cfg: TrainConfig, arch: str) -> Recipe:
    """The settings `cfg` asks for, filled with the architecture's `optimizer_defaults`.

    CNNs: SGD lr 0.01, momentum 0.9, weight decay 5e-4, poly 0.9, no warm-up. SETR: weight decay 0, the
    head's rate x10, lr 0.01 (naive) / 0.001 (PUP) / 0.002 (MLA), linear warm-up. Segmenter: lr 0.001,
    weight decay 0, one rate for all, warm-up. AdamW: lr 1e-4, weight decay 0.01, warm-up.
    """
    defaults = architecture_class(arch).optimizer_defaults
    if cfg.optimizer == "adamw":
        lr, wd = ADAMW_LR, ADAMW_WEIGHT_DECAY
    else:
        lr, wd = defaults.sgd_lr, defaults.weight_decay
    head_mult = defaults.head_lr_mult
    warmup = min(MAX_WARMUP, cfg.iterations // 10) if defaults.warmup or cfg.optimizer == "adamw" else 0
    return Recipe(
        optimizer=cfg.optimizer,
        lr=cfg.lr if cfg.lr is not None else lr,
        weight_decay=cfg.weight_decay if cfg.weight_decay is not None else wd,
        head_lr_mult=cfg.head_lr_mult if cfg.head_lr_mult is not None else head_mult,
        warmup_iters=cfg.warmup_iters if cfg.warmup_iters is not None else warmup,
        momentum=cfg.momentum,
        poly_power=cfg.poly_power,
        min_lr_ratio=cfg.min_lr_ratio,
    )


def build_optimizer(model: SegModel, r: Recipe) -> torch.optim.Optimizer:
    """SGD (momentum) or AdamW over the trainable parameters: the backbone's at `lr`, the rest at
    `lr * head_lr_mult`. AdamW leaves norms, biases and position/class embeddings undecayed."""
    in_backbone = {id(p) for p in model.backbone.parameters()}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = r.optimizer == "sgd" or not (p.ndim <= 1 or any(n in name for n in NO_DECAY_NAMES))
        groups.setdefault((id(p) in in_backbone, decay), []).append(p)
    param_groups = []
    for (backbone, decay), params in sorted(groups.items(), reverse=True):
        lr = r.lr if backbone else r.lr * r.head_lr_mult
        param_groups.append({"params": params, "lr": lr, "base_lr": lr,
                             "weight_decay": r.weight_decay if decay else 0.0,
                             "name": ("backbone" if backbone else "head") + ("" if decay else ".no_decay")})
    if not param_groups:
        raise ValueError("no trainable parameters (is everything frozen?)")
    if r.optimizer == "adamw":
        return torch.optim.AdamW(param_groups, lr=r.lr, betas=(0.9, 0.999))
    return torch.optim.SGD(param_groups, lr=r.lr, momentum=r.momentum)


def lr_factor(iteration: int, iterations: int, r: Recipe) -> float:
    """Multiplier of the base rates at `iteration` (0-based): linear warm-up, then poly decay to
    `min_lr_ratio` (`(1 - i/T)^power`, per iteration)."""
    poly = (1 - r.min_lr_ratio) * (1 - iteration / iterations) ** r.poly_power + r.min_lr_ratio
    if iteration < r.warmup_iters:
        return poly * (iteration + 1) / r.warmup_iters
    return poly


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
