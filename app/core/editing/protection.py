"""Which pixels an edit may change: protected classes and "paint only over ..." modes.

A `PaintGuard` is consulted by `LabelDocument` for every tool write (brush, eraser, fill, polygon,
accept-proposal, GrabCut, SAM, superpixels, clean-up), so a tool never needs to know about it.
Undo, redo and journal replay are not tool writes and are never guarded.

Rules, per pixel with current label `old` and new value `new`:
- a pixel whose `old` is a protected class is never changed;
- a class write (`new != 255`) with `only_over=None` may change any other pixel; with
  `only_over=255` only unlabelled pixels; with `only_over=X` only pixels labelled `X`;
- erasing (`new == 255`) is limited by the protected classes alone (the "only over" modes say what
  paint may cover, and erasing covers nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE_INDEX = 255


@dataclass(frozen=True)
class PaintGuard:
    """Protected classes and the class (or 255, unlabelled) that paint may cover; None: any."""

    protected: frozenset[int] = frozenset()
    only_over: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "protected", frozenset(int(c) for c in self.protected))
        bad = [c for c in self.protected if not 0 <= c < IGNORE_INDEX]
        if bad:
            raise ValueError(f"protected classes must be class indices 0-254, got {sorted(bad)}")
        if self.only_over is not None and not 0 <= int(self.only_over) <= IGNORE_INDEX:
            raise ValueError(f"only_over must be a class index or 255 (unlabelled), got {self.only_over}")

    @property
    def active(self) -> bool:
        return bool(self.protected) or self.only_over is not None

    def allowed(self, old: np.ndarray, new: int | np.ndarray) -> np.ndarray | None:
        """Bool array like `old`: where writing `new` is allowed; None when everything is (no rule)."""
        if not self.active:
            return None
        ok = np.ones(old.shape, bool)
        if self.protected:
            ok &= ~np.isin(old, np.fromiter(self.protected, np.uint8))
        if self.only_over is not None:
            over = old == np.uint8(self.only_over)
            if isinstance(new, np.ndarray):
                ok &= over | (new == IGNORE_INDEX)
            elif int(new) != IGNORE_INDEX:
                ok &= over
        return ok

    def describe(self, names: list[str] | None = None) -> str:
        """A short line for the status bar: what the guard keeps."""
        def name(c: int) -> str:
            if c == IGNORE_INDEX:
                return "unlabelled"
            return names[c] if names and c < len(names) else f"class {c}"
        parts = []
        if self.only_over is not None:
            parts.append(f"painting only over {name(self.only_over)}")
        if self.protected:
            parts.append("protected: " + ", ".join(name(c) for c in sorted(self.protected)))
        return "; ".join(parts) if parts else "painting over anything"


NO_GUARD = PaintGuard()
