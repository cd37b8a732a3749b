"""Folding eval-mode batch norms into the convolutions that feed them, for inference."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights


def fold_batch_norms(model: nn.Module, example: torch.Tensor, *, tolerance: float = 1e-4) -> nn.Module | None:
    """A copy of `model` (eval mode) in which every `BatchNorm2d` whose input is a `Conv2d`'s output is folded
    into that convolution; None when nothing folds or the copy's output differs from the model's.

    The pairs are found by running `example` through the model, so any wiring is handled; the copy shares
    every tensor with `model` except the folded convolutions' weights and biases. Its logits for `example`
    must match the model's within `tolerance` (relative), otherwise nothing is used.
    """
    pairs = _conv_bn_pairs(model, example)
    if not pairs:
        return None
    shared = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    fused = copy.deepcopy(model, memo=dict(shared))
    names = {m: n for n, m in model.named_modules()}
    fused_modules = dict(fused.named_modules())
    for conv, bn in pairs:
        _fold(fused_modules[names[conv]], bn)
        _replace(fused, names[bn], _after_norm(bn))
    with torch.no_grad():
        want, got = model(example), fused(example)
    if got.shape != want.shape or not torch.isfinite(got).all():
        return None
    scale = want.abs().max().clamp_min(1e-6)
    return fused if float((got - want).abs().max() / scale) <= tolerance else None


def _conv_bn_pairs(model: nn.Module, example: torch.Tensor) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    made_by: dict[int, tuple[nn.Conv2d, torch.Tensor]] = {}
    fed: list[tuple[nn.Conv2d, nn.BatchNorm2d]] = []
    hooks = []

    def after_conv(module, inputs, output):
        made_by[id(output)] = (module, output)  # the tensor is kept so its id stays unique

    def before_bn(module, inputs):
        entry = made_by.get(id(inputs[0]))
        fed.append((entry[0] if entry and entry[1] is inputs[0] else None, module))

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(after_conv))
        elif isinstance(m, nn.BatchNorm2d) and _foldable_norm(m):
            hooks.append(m.register_forward_pre_hook(before_bn))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
    # A norm or a convolution met more than once (shared modules) is left alone.
    norms = [bn for _, bn in fed]
    convs = [c for c, _ in fed]
    return [(c, bn) for c, bn in dict.fromkeys(fed) if c is not None and norms.count(bn) == 1
            and convs.count(c) == 1 and c.out_channels == bn.num_features]


def _foldable_norm(bn: nn.BatchNorm2d) -> bool:
    if bn.training or not bn.track_running_stats or bn.running_mean is None:
        return False
    if type(bn) is nn.BatchNorm2d:
        return True
    # timm's BatchNormAct2d: the norm, then `drop` and `act` modules.
    return type(bn).__name__ == "BatchNormAct2d" and isinstance(getattr(bn, "act", None), nn.Module)


def _after_norm(bn: nn.BatchNorm2d) -> nn.Module:
    if type(bn) is nn.BatchNorm2d:
        return nn.Identity()
    return nn.Sequential(bn.drop, bn.act)


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """The norm folded into the convolution (torch's `fuse_conv_bn_weights`, computed in float32)."""
    def f32(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.detach().float()

    with torch.no_grad():
        weight, bias = fuse_conv_bn_weights(f32(conv.weight), f32(conv.bias), f32(bn.running_mean),
                                            f32(bn.running_var), bn.eps, f32(bn.weight), f32(bn.bias))
    dtype = conv.weight.dtype
    conv.weight = nn.Parameter(weight.detach().to(dtype), requires_grad=False)
    conv.bias = nn.Parameter(bias.detach().to(dtype), requires_grad=False)


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)
