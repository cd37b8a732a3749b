"""Why a model labelled a pixel: class-activation maps and the architectures' own attention, as maps in
image coordinates."""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.layers import Attention
from torch import nn

from engine.models.base import Probe, SegModel, check_input


@dataclass(frozen=True)
class Frame:
    """Where the point lies: image size, padded size (the model pads to its size divisor), the point."""

    height: int
    width: int
    padded: tuple[int, int]
    divisor: int
    row: int
    col: int
    pad_rule: str = "crop"  # the model's: how its logits come back from the padded size

    def to_image(self, grid_map: torch.Tensor, mode: str) -> torch.Tensor:
        """A map over the padded input's feature grid `[h, w]` as float32 `[H, W]` on the CPU.

        `mode` "nearest" keeps every cell a constant block where it lies on the padded input (patches,
        criss-cross cells); "bilinear" resizes as the model resizes its logits.
        """
        m = grid_map.detach().float()[None, None]
        if mode != "nearest" and self.pad_rule == "mmseg":
            m = F.interpolate(m, size=(self.height, self.width), mode="bilinear", align_corners=False)
            return m[0, 0].cpu().contiguous()
        if mode == "nearest":
            m = F.interpolate(m, size=self.padded, mode="nearest")
        else:
            m = F.interpolate(m, size=self.padded, mode="bilinear", align_corners=False)
        return m[0, 0, : self.height, : self.width].cpu().contiguous()

    def cell(self, grid: tuple[int, int]) -> tuple[int, int]:
        """The cell of a `grid` over the padded input that holds the point (the cell "nearest" maps it to)."""
        return self.row * grid[0] // self.padded[0], self.col * grid[1] // self.padded[1]


def explain(model: SegModel, x: torch.Tensor, point: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Maps float32 `[H, W]` (CPU) in image coordinates that show why `model` labelled pixel `point`
    (row, col) of the single normalised image `x` `[1, 3, H, W]` as it did.

    - `"cam"` (every architecture): Grad-CAM for the class predicted at the point, from the gradient of
      that logit at the decoder's last feature map (`model.cam_layer()`'s input); ReLU, resized like the
      logits, scaled to a maximum of 1 (all zeros where no location supports the class).
    - `"attention/layer{i}"` (SETR, Segmenter): the attention the point's patch pays to every patch in
      encoder block i, averaged over heads (attention to the class token is left out, so a map sums to at
      most 1 over patches); `"attention/decoder{j}"` the same in the mask transformer's layers.
    - `"attention/pass{k}"` (CCNet): pass 1 is the pixel's criss-cross attention (its row and column);
      pass k composes passes k..1 (`A_k[u] A_{k-1} ... A_1`), how much the point's output after pass k
      draws on each pixel's input to pass 1 along attention paths (the residual paths left out).
    - `"codeword{k}"` (EncNet): the soft assignment of each location to codeword k.

    The model is left as it was found: train/eval modes, requires_grad flags, no hooks, no gradients.
    `forward` is not changed: attention weights are computed from each block's own q and k (read from
    its qkv projection during this call), not by switching fused attention off.
    """
    frame = _frame(model, x, point)
    probes = _probes(model, frame)
    cam = _ClassActivation(model.cam_layer(), frame)
    with _inspection(model), ExitStack() as hooks:
        for probe in [cam, *probes]:
            for handle in probe.attach():
                hooks.callback(handle.remove)
        with torch.enable_grad():
            logits = model(x)
            maps = {"cam": cam.map(logits)}
        with torch.no_grad():
            for probe in probes:
                maps.update(probe.maps())
    return maps


def token_attention(model: SegModel, x: torch.Tensor, point: tuple[int, int]) -> dict[str, torch.Tensor]:
    """The full attention rows behind explain's `"attention/..."` maps: for each key, the head-averaged
    weights `[tokens]` (float32, CPU) the point's patch token gives to every token of that layer, prefix
    (class) tokens and mask-transformer class tokens included."""
    frame = _frame(model, x, point)
    probes = [p for p in _probes(model, frame) if isinstance(p, _TokenAttention)]
    if not probes:
        raise ValueError(f"{type(model).__name__} has no transformer attention")
    with _inspection(model), ExitStack() as hooks, torch.no_grad():
        for probe in probes:
            for handle in probe.attach():
                hooks.callback(handle.remove)
        model(x)
        return {k: v.cpu() for p in probes for k, v in p.rows.items()}


def _frame(model: SegModel, x: torch.Tensor, point: tuple[int, int]) -> Frame:
    check_input(x)
    if x.shape[0] != 1:
        raise ValueError(f"explain takes a single image [1, 3, H, W], got a batch of shape {list(x.shape)}")
    h, w = x.shape[-2:]
    try:
        row, col = (operator.index(v) for v in point)
    except (TypeError, ValueError):
        raise ValueError(f"point must be (row, col) integers, got {point!r}") from None
    if not (0 <= row < h and 0 <= col < w):
        raise ValueError(f"point (row, col) = ({row}, {col}) lies outside the image of {h}x{w} (height x width)")
    d = model.size_divisor
    return Frame(h, w, (math.ceil(h / d) * d, math.ceil(w / d) * d), d, row, col, model.pad_rule)


def _probes(model: SegModel, frame: Frame) -> list:
    """The readers of the model's own probes (`SegModel.probes`)."""
    readers = {"token_attention": _TokenAttention, "criss_cross": _CrissCross, "codewords": _Codewords}
    return [readers[p.kind](p, frame) for p in model.probes()]


@contextmanager
def _inspection(model: nn.Module) -> Iterator[None]:
    """Eval mode and no parameter gradients for the duration; every module's mode and every flag restored."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        model.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for m, training in modes:
            m.training = training
        for p, flag in flags:
            p.requires_grad_(flag)


class _ClassActivation:
    """Grad-CAM at the input of the model's `cam_layer`."""

    def __init__(self, layer: nn.Module, frame: Frame):
        self.layer, self.frame = layer, frame
        self.feats: list[torch.Tensor] = []

    def attach(self) -> list:
        def capture(module, args):
            feat = args[0].detach().requires_grad_(True)
            self.feats.append(feat)
            return (feat, *args[1:])

        return [self.layer.register_forward_pre_hook(capture)]

    def map(self, logits: torch.Tensor) -> torch.Tensor:
        if len(self.feats) != 1:
            raise RuntimeError(f"the model's cam_layer ran {len(self.feats)} times in one forward, expected once")
        feat = self.feats[0]
        f = self.frame
        score = logits[0, :, f.row, f.col]
        (grad,) = torch.autograd.grad(score[score.argmax()], feat)
        if feat.dim() == 3:  # patch tokens [1, N, C]: back to the padded input's patch grid
            grid = (f.padded[0] // f.divisor, f.padded[1] // f.divisor)
            feat, grad = (t.transpose(1, 2).reshape(1, -1, *grid) for t in (feat, grad))
        weights = grad.float().mean(dim=(2, 3), keepdim=True)
        cam = f.to_image(torch.relu((weights * feat.detach().float()).sum(dim=1))[0], "bilinear")
        peak = cam.max()
        return cam / peak if peak > 0 else cam


class _TokenAttention:
    """Head-averaged attention of the point's patch token in one timm `Attention`, from its own q and k."""

    def __init__(self, probe: Probe, frame: Frame):
        self.attn: Attention = probe.module
        self.key, self.prefix, self.frame = probe.key, probe.prefix_tokens, frame
        self.grid = (frame.padded[0] // probe.patch_size, frame.padded[1] // probe.patch_size)
        r, c = frame.cell(self.grid)
        self.token = self.prefix + r * self.grid[1] + c
        self.rows: dict[str, torch.Tensor] = {}

    def attach(self) -> list:
        return [self.attn.qkv.register_forward_hook(self._capture)]

    def _capture(self, module, args, qkv: torch.Tensor) -> None:
        a = self.attn
        with torch.no_grad():
            qkv = qkv[0].reshape(qkv.shape[1], 3, a.num_heads, a.head_dim)
            q = a.q_norm(qkv[self.token, 0]).float()  # [heads, head_dim]
            k = a.k_norm(qkv[:, 1].transpose(0, 1)).float()  # [heads, tokens, head_dim]
            scores = torch.einsum("hd,hnd->hn", q * a.scale, k)
            self.rows[self.key] = scores.softmax(dim=-1).mean(dim=0)

    def maps(self) -> dict[str, torch.Tensor]:
        n = self.grid[0] * self.grid[1]
        patches = self.rows[self.key][self.prefix : self.prefix + n].reshape(self.grid)
        return {self.key: self.frame.to_image(patches, "nearest")}


class _CrissCross:
    """The criss-cross attention of every pass, composed from the point backwards."""

    def __init__(self, probe: Probe, frame: Frame):
        self.cca, self.key, self.frame = probe.module, probe.key, frame
        self.inputs: list[torch.Tensor] = []

    def attach(self) -> list:
        return [self.cca.register_forward_pre_hook(lambda module, args: self.inputs.append(args[0].detach()))]

    def maps(self) -> dict[str, torch.Tensor]:
        weights = [tuple(w[0].float() for w in self.cca.weights(x)) for x in self.inputs]  # [h,w,h], [h,w,w]
        grid = tuple(self.inputs[0].shape[-2:])
        r, c = self.frame.cell(grid)
        maps = {}
        for k in range(len(weights)):
            w_col, w_row = weights[k]
            s = torch.zeros(grid, device=w_col.device)
            s[:, c] += w_col[r, c]
            s[r, :] += w_row[r, c]
            for w_col, w_row in reversed(weights[:k]):  # s <- s A_j: spread each cell's share over its cross
                s = torch.einsum("hw,hwg->gw", s, w_col) + torch.einsum("hw,hwv->hv", s, w_row)
            maps[f"{self.key}{k + 1}"] = self.frame.to_image(s, "nearest")
        return maps


class _Codewords:
    """Soft-assignment maps of EncNet's Encoding layer."""

    def __init__(self, probe: Probe, frame: Frame):
        self.encoding, self.key, self.frame = probe.module, probe.key, frame
        self.inputs: list[torch.Tensor] = []

    def attach(self) -> list:
        return [self.encoding.register_forward_pre_hook(lambda module, args: self.inputs.append(args[0].detach()))]

    def maps(self) -> dict[str, torch.Tensor]:
        x = self.inputs[-1]
        grid = x.shape[-2:]
        with torch.autocast(x.device.type, enabled=False):
            a = self.encoding.assignments(x.float().flatten(2).transpose(1, 2))[0]  # [N, K]
        a = a.transpose(0, 1).reshape(-1, *grid)
        return {f"{self.key}{k}": self.frame.to_image(a[k], "bilinear") for k in range(a.shape[0])}
