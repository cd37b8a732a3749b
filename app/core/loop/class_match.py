"""How a model's classes line up with a project's: by name, case and surrounding spaces ignored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

IGNORE_INDEX = 255


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class ClassMatch:
    """A model's class names against a project's."""

    model: tuple[str, ...]
    project: tuple[str, ...]

    @property
    def same(self) -> bool:
        """The same classes in the same order: the model's indices are the project's."""
        return [_key(n) for n in self.model] == [_key(n) for n in self.project]

    @property
    def only_in_model(self) -> list[str]:
        mine = {_key(n) for n in self.project}
        return [n for n in self.model if _key(n) not in mine]

    @property
    def only_in_project(self) -> list[str]:
        theirs = {_key(n) for n in self.model}
        return [n for n in self.project if _key(n) not in theirs]

    def by_index(self) -> np.ndarray:
        """A 256-entry table, model index -> project index, when the classes are the same; indices the
        project lacks become 255 (not shown, never accepted)."""
        lut = np.full(256, IGNORE_INDEX, np.uint8)
        n = min(len(self.model), len(self.project), IGNORE_INDEX)
        lut[:n] = np.arange(n, dtype=np.uint8)
        return lut

    def by_name(self) -> np.ndarray:
        """A 256-entry table, model index -> the project index of the class of the same name, or 255."""
        lut = np.full(256, IGNORE_INDEX, np.uint8)
        index = {_key(n): i for i, n in enumerate(self.project)}
        for i, name in enumerate(self.model[:IGNORE_INDEX]):
            lut[i] = index.get(_key(name), IGNORE_INDEX)
        return lut

    def describe(self) -> str:
        """One or two sentences on how they differ, for a question to the person."""
        parts = [f"The model has {len(self.model)} classes ({_names(self.model)}); "
                 f"the project has {len(self.project)} ({_names(self.project)})."]
        if self.only_in_model:
            parts.append(f"Only in the model: {_names(self.only_in_model)}.")
        if self.only_in_project:
            parts.append(f"Only in the project: {_names(self.only_in_project)}.")
        if not self.only_in_model and not self.only_in_project:
            parts.append("The names are the same, in another order.")
        return " ".join(parts)


def _names(names: Sequence[str], most: int = 8) -> str:
    shown = ", ".join(names[:most])
    return shown + (f", … ({len(names) - most} more)" if len(names) > most else "")


def match_classes(model: Sequence, project: Sequence) -> ClassMatch:
    """Compare two class lists (names or objects with a `name`)."""
    def names(items: Sequence) -> tuple[str, ...]:
        return tuple(getattr(c, "name", c) for c in items)
    return ClassMatch(names(model), names(project))


def relabel(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """A model's labels as the project's through `lut` (uint8 out; indices past the table become 255)."""
    if labels.dtype == np.uint8:
        return lut[labels]
    out = np.full(labels.shape, IGNORE_INDEX, np.uint8)
    inside = labels < lut.size
    out[inside] = lut[labels[inside]]
    return out
