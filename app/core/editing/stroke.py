"""Paint atoms and strokes: what one edit changed, as data (region, mask, old values, new values)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Region = tuple[int, int, int, int]  # y0, x0, y1, x1 (half-open), in image pixels


def union(regions) -> Region | None:
    """The smallest region holding all `regions` (None when there are none)."""
    regions = [r for r in regions if r is not None]
    if not regions:
        return None
    return (min(r[0] for r in regions), min(r[1] for r in regions),
            max(r[2] for r in regions), max(r[3] for r in regions))


@dataclass(frozen=True, eq=False)
class Atom:
    """One write: inside `region`, the pixels where `mask` is set went from `old` to `new`.

    `mask` is bool `[y1 - y0, x1 - x0]` and marks only pixels whose value changed; `old` holds their
    previous values (uint8, in `mask`'s row-major order); `new` is one value for all or an array like `old`.
    """

    region: Region
    mask: np.ndarray
    old: np.ndarray
    new: int | np.ndarray

    @property
    def nbytes(self) -> int:
        return self.mask.nbytes + self.old.nbytes + (self.new.nbytes if isinstance(self.new, np.ndarray) else 0)

    @property
    def count(self) -> int:
        return int(self.old.size)

    def new_values(self) -> int | np.ndarray:
        """`new` as `LabelDocument.apply` takes it: the value, or uint8 values shaped like `mask`."""
        if not isinstance(self.new, np.ndarray):
            return self.new
        out = np.zeros(self.mask.shape, np.uint8)
        out[self.mask] = self.new
        return out

    def inverse(self) -> Atom:
        new = self.new if isinstance(self.new, np.ndarray) else np.full(self.old.shape, self.new, np.uint8)
        return Atom(self.region, self.mask, new, self.old)


@dataclass(frozen=True, eq=False)
class Stroke:
    """One undo step: atoms in the order they were written (they may overlap)."""

    atoms: tuple[Atom, ...]
    nbytes: int = field(init=False)
    region: Region = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nbytes", sum(a.nbytes for a in self.atoms))
        object.__setattr__(self, "region", union(a.region for a in self.atoms))

    def inverse(self) -> Stroke:
        """The stroke that writes back the old values (what an undo writes)."""
        return Stroke(tuple(a.inverse() for a in reversed(self.atoms)))
