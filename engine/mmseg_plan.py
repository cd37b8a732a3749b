"""What an mmsegmentation checkpoint becomes: the `ImportPlan`, the `KeyMap` between mmseg's keys and ours,
and the readers of keys and shapes that each architecture's planner (`SegModel.plan_mmseg`, next to the
architecture) uses. It knows no architecture; `engine.mmseg_import` reads the checkpoint and runs the plans.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

State = Mapping[str, torch.Tensor]


class CheckpointMismatch(ValueError):
    """The checkpoint does not fit the architecture; the message says how (the importer adds the file's name)."""


class KeyMap:
    """Renaming rules between mmseg's keys and ours: (mmseg prefix, our prefix) pairs where `{i}` stands
    for a block index. Keys that no rule matches are the same on both sides."""

    def __init__(self, rules: tuple[tuple[str, str], ...]):
        self.rules = rules
        self._forward = [(_prefix_pattern(m), o) for m, o in rules]
        self._backward = [(_prefix_pattern(o), m) for m, o in rules]

    def to_ours(self, key: str) -> str:
        return _rename(key, self._forward)

    def to_mmseg(self, key: str) -> str:
        return _rename(key, self._backward)


def _prefix_pattern(prefix: str) -> re.Pattern:
    return re.compile("^" + re.escape(prefix).replace(r"\{i\}", r"(?P<i>\d+)"))


def _rename(key: str, rules: list[tuple[re.Pattern, str]]) -> str:
    for pattern, template in rules:
        m = pattern.match(key)
        if m:
            return template.replace("{i}", m.groupdict().get("i") or "") + key[m.end():]
    return key


@dataclass
class ImportPlan:
    """What a checkpoint becomes: an architecture config and how its keys map onto the model's."""

    arch: str
    backbone: str
    num_classes: int
    options: dict
    keymap: KeyMap
    normalization: tuple[tuple[float, ...], tuple[float, ...]]
    # mmseg keys of modules that mmseg builds but never runs (e.g. an unused classifier): dropped.
    unused_by_mmseg: tuple[str, ...] = field(default=())
    # Our keys of biases that mmseg may build without (`patch_bias=False`): an absent one is an exact zero.
    zero_when_absent: tuple[str, ...] = field(default=())


def has_prefix(state: State, prefix: str) -> bool:
    """Whether any key starts with `prefix`."""
    return any(k.startswith(prefix) for k in state)


def shape(state: State, key: str) -> torch.Size:
    """The shape of tensor `key`; `CheckpointMismatch` when the checkpoint lacks it."""
    if key not in state:
        raise CheckpointMismatch(f"the checkpoint lacks {key}")
    return state[key].shape


def count(state: State, prefix: str) -> int:
    """How many numbered children `prefix{n}.` the keys have."""
    found = {int(m.group(1)) for k in state if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    return max(found) + 1 if found else 0


def is_int(v: object) -> bool:
    """An int that is not a bool (config values read as literals)."""
    return isinstance(v, int) and not isinstance(v, bool)


def describe_heads(state: State) -> str:
    """The checkpoint's modules, for messages: `backbone: ...; decode_head: ...`."""
    parts = []
    for top in ("backbone", "neck", "decode_head", "auxiliary_head"):
        subs = sorted({k.split(".")[1] for k in state if k.startswith(top + ".") and k.count(".") > 1})
        if subs:
            parts.append(f"{top}: {', '.join(subs[:8])}{', ...' if len(subs) > 8 else ''}")
    return "; ".join(parts) or "no backbone or head keys"
