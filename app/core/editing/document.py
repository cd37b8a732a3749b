"""One image's labels under edit: the label map, the model's proposal, and an undo history of paint atoms.

Coordinates are (row, column) = (y, x) throughout, like numpy indexing. A `Region` is
`(y0, x0, y1, x1)`, half-open, in image pixels. No Qt here: widgets mirror the document through
`listeners` (called with the changed region) and `stroke_listeners` (called with every committed
write, which is how the recovery journal follows the document).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count

import numpy as np

from app.core.editing.protection import NO_GUARD, PaintGuard
from app.core.editing.stroke import Atom, Region, Stroke, union

IGNORE_INDEX = 255
DEFAULT_MAX_HISTORY_BYTES = 1 << 30

_state_ids = count(1)


@dataclass(frozen=True)
class Snapshot:
    """A copy of the labels at one moment, and the tokens that say which moment (for saving off-thread)."""

    labels: np.ndarray
    state: int
    revision: int


class LabelDocument:
    """One image's labels under edit: label map, model proposal, undo history of paint atoms.

    A stroke (`begin_stroke`, any number of `apply`, `end_stroke`) is one undo step. History memory
    grows with the painted area, never with the image size: each atom keeps only the pixels it changed.
    Past `max_history_bytes` the oldest undo steps are dropped.
    """

    def __init__(self, image: np.ndarray, labels: np.ndarray | None = None, *,
                 max_history_bytes: int = DEFAULT_MAX_HISTORY_BYTES, num_classes: int | None = None):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
        self.image = image
        self.shape: tuple[int, int] = (int(image.shape[0]), int(image.shape[1]))
        if labels is None:
            labels = np.full(self.shape, IGNORE_INDEX, np.uint8)
        else:
            labels = np.asarray(labels)
            if labels.shape != self.shape:
                raise ValueError(f"labels of shape {labels.shape} for an image of shape {self.shape}")
            if labels.dtype != np.uint8:
                raise ValueError(f"labels must be uint8, got {labels.dtype}")
            labels = np.array(labels, order="C")  # our own copy: edits never reach the caller's array
        self.labels: np.ndarray = labels
        self.proposal: np.ndarray | None = None
        self.confidence: np.ndarray | None = None
        self.entropy: np.ndarray | None = None
        self.guard: PaintGuard = NO_GUARD  # protected classes and paint modes, applied to every tool write
        self.listeners: list[Callable[[Region], None]] = []
        self.stroke_listeners: list[Callable[[Stroke, int], None]] = []
        self.max_history_bytes = max_history_bytes
        # Values a write may put: 0..num_classes-1 and 255 (None: any). The project sets it, so no
        # label outside the project's classes is ever written, whatever a tool asks for.
        self.num_classes = num_classes
        self.revision = 0  # counts committed writes (strokes, undos, redos); the journal's sequence number
        self._undo: deque[tuple[Stroke, int]] = deque()  # (stroke, state id after it)
        self._redo: deque[tuple[Stroke, int]] = deque()
        self._base_state = 0  # state id when the undo stack is empty
        self._saved_state = 0
        self._atoms: list[Atom] | None = None

    # ---- state ---------------------------------------------------------------------------------------

    @property
    def full_region(self) -> Region:
        return (0, 0, self.shape[0], self.shape[1])

    @property
    def state(self) -> int:
        """A token naming the current label content as reached through the history."""
        return self._undo[-1][1] if self._undo else self._base_state

    @property
    def dirty(self) -> bool:
        """Edited since `mark_saved()` (undoing back to the saved state makes it clean again)."""
        return self.state != self._saved_state or bool(self._atoms)

    def mark_saved(self, state: int | None = None) -> None:
        """Record that the labels as of `state` (default: now) are on disk."""
        self._saved_state = self.state if state is None else state

    def snapshot(self) -> Snapshot:
        """A copy of the labels for saving on another thread; pass its `state` to `mark_saved`."""
        return Snapshot(self.labels.copy(), self.state, self.revision)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo) or bool(self._atoms)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo) and not self._atoms

    @property
    def in_stroke(self) -> bool:
        return self._atoms is not None

    def open_atoms(self) -> tuple[Atom, ...]:
        """The writes of the stroke being drawn so far (empty outside a stroke)."""
        return tuple(self._atoms or ())

    def history_nbytes(self) -> int:
        """Memory held by the undo and redo history (and the open stroke)."""
        held = sum(s.nbytes for s, _ in self._undo) + sum(s.nbytes for s, _ in self._redo)
        return held + sum(a.nbytes for a in self._atoms or ())

    # ---- proposal ------------------------------------------------------------------------------------

    def set_proposal(self, labels: np.ndarray | None, confidence: np.ndarray | None = None,
                     entropy: np.ndarray | None = None) -> None:
        """Attach (or with `None`, drop) the model's proposal and its per-pixel confidence and entropy."""
        if labels is not None:
            labels = self._check_map("proposal", labels, (np.uint8,))
        if confidence is not None:
            confidence = self._check_map("confidence", confidence, (np.float32, np.float16, np.float64))
        if entropy is not None:
            entropy = self._check_map("entropy", entropy, (np.float32, np.float16, np.float64))
        self.proposal, self.confidence, self.entropy = labels, confidence, entropy
        self._notify(self.full_region)

    def _check_map(self, what: str, arr: np.ndarray, dtypes: tuple) -> np.ndarray:
        arr = np.asarray(arr)
        if arr.shape != self.shape:
            raise ValueError(f"{what} of shape {arr.shape} for an image of shape {self.shape}")
        if arr.dtype not in dtypes:
            raise ValueError(f"{what} must be {' or '.join(np.dtype(d).name for d in dtypes)}, got {arr.dtype}")
        return arr.astype(np.float32, copy=False) if arr.dtype.kind == "f" else arr

    # ---- painting ------------------------------------------------------------------------------------

    def begin_stroke(self) -> None:
        """Start one undo step; `apply` calls until `end_stroke` belong to it."""
        if self._atoms is not None:
            self.end_stroke()
        self._atoms = []

    def apply(self, origin: tuple[int, int], mask: np.ndarray, value: int | np.ndarray, *,
              guarded: bool = True) -> Region | None:
        """Write `value` where `mask` (a bool crop placed at `origin`, clipped to the image) is set.

        `value` is a class index, 255 to erase, or a uint8 array of new values shaped like `mask`.
        Only the mask's bounding box is touched, and only pixels `guard` allows (unless `guarded` is
        False: journal replay). Returns the changed region, or None when no pixel changed. Outside a
        stroke, the call opens one (closed by `end_stroke`).
        """
        atom = self._write(origin, mask, value, self.guard if guarded else NO_GUARD)
        if atom is None:
            return None
        if self._atoms is None:
            self._atoms = []
        self._atoms.append(atom)
        self._notify(atom.region)
        return atom.region

    def end_stroke(self) -> Stroke | None:
        """Close the open stroke: it becomes one undo step. Returns it, or None when it changed nothing.

        `stroke_listeners` run before this returns; an error of theirs (the journal cannot be written)
        propagates, with the stroke already on the undo stack and the labels as painted.
        """
        atoms, self._atoms = self._atoms, None
        if not atoms:
            return None
        stroke = Stroke(tuple(atoms))
        self._redo.clear()
        self._push_undo(stroke, next(_state_ids))
        self._committed(stroke)
        return stroke

    def paint(self, origin: tuple[int, int], mask: np.ndarray, value: int | np.ndarray) -> Stroke | None:
        """One `apply` as a whole stroke (fill, polygon, GrabCut, accept-proposal)."""
        self.begin_stroke()
        try:
            self.apply(origin, mask, value)
        finally:
            stroke = self.end_stroke()
        return stroke

    def replay(self, stroke: Stroke) -> Region | None:
        """Write a recorded stroke's new values again as one undo step (journal recovery)."""
        self.begin_stroke()
        for atom in stroke.atoms:
            self._check_region(atom.region)
            self.apply(atom.region[:2], atom.mask, atom.new_values(), guarded=False)
        done = self.end_stroke()
        return done.region if done else None

    def undo(self) -> Region | None:
        """Restore the values from before the last stroke. Returns the changed region."""
        if self._atoms:
            self.end_stroke()
        self._atoms = None
        if not self._undo:
            return None
        stroke, state = self._undo.pop()
        for atom in reversed(stroke.atoms):
            self._put(atom.region, atom.mask, atom.old)
        self._redo.append((stroke, state))
        self._notify(stroke.region)
        self._committed(stroke.inverse())
        return stroke.region

    def redo(self) -> Region | None:
        """Write the last undone stroke again. Returns the changed region."""
        if self._atoms:
            self.end_stroke()
        self._atoms = None
        if not self._redo:
            return None
        stroke, state = self._redo.pop()
        for atom in stroke.atoms:
            self._put(atom.region, atom.mask, atom.new)
        self._push_undo(stroke, state)
        self._notify(stroke.region)
        self._committed(stroke)
        return stroke.region

    # ---- internals -----------------------------------------------------------------------------------

    def _write(self, origin: tuple[int, int], mask: np.ndarray, value: int | np.ndarray,
               guard: PaintGuard = NO_GUARD) -> Atom | None:
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
        values = None
        if isinstance(value, np.ndarray):
            if value.shape != mask.shape:
                raise ValueError(f"values of shape {value.shape} for a mask of shape {mask.shape}")
            if value.dtype != np.uint8:
                raise ValueError(f"values must be uint8, got {value.dtype}")
            values = value
        else:
            value = int(value)
            if not 0 <= value <= 255:
                raise ValueError(f"label value {value} outside 0-255")
            self._check_value(value)
        oy, ox = int(origin[0]), int(origin[1])
        y0, x0 = max(oy, 0), max(ox, 0)
        y1, x1 = min(oy + mask.shape[0], self.shape[0]), min(ox + mask.shape[1], self.shape[1])
        if y0 >= y1 or x0 >= x1:
            return None
        crop = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
        sub = mask[crop]
        if sub.dtype != bool:
            sub = sub != 0
        view = self.labels[y0:y1, x0:x1]
        if values is None:
            changed = sub & (view != value)
        else:
            vals = values[crop]
            changed = sub & (view != vals)
        allowed = guard.allowed(view, value if values is None else vals)
        if allowed is not None:
            changed &= allowed
        rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        if rows.size == 0:
            return None
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        changed = changed[r0:r1, c0:c1]
        view = view[r0:r1, c0:c1]
        old = view[changed]
        if values is None:
            new: int | np.ndarray = value
            np.copyto(view, np.uint8(value), where=changed)
        else:
            vals = vals[r0:r1, c0:c1]
            new = vals[changed]
            if self.num_classes is not None and new.size:
                bad = new[(new >= self.num_classes) & (new != IGNORE_INDEX)]
                if bad.size:
                    self._check_value(int(bad[0]))
            np.copyto(view, vals, where=changed)
        return Atom((y0 + r0, x0 + c0, y0 + r1, x0 + c1), changed, old, new)

    def _check_value(self, value: int) -> None:
        if self.num_classes is not None and value != IGNORE_INDEX and value >= self.num_classes:
            raise ValueError(f"label value {value} is not a class: the project has {self.num_classes} "
                             f"(0-{self.num_classes - 1}, 255 = not labelled)")

    def _put(self, region: Region, mask: np.ndarray, values: int | np.ndarray) -> None:
        y0, x0, y1, x1 = region
        self.labels[y0:y1, x0:x1][mask] = values

    def _check_region(self, region: Region) -> None:
        y0, x0, y1, x1 = region
        if not (0 <= y0 < y1 <= self.shape[0] and 0 <= x0 < x1 <= self.shape[1]):
            raise ValueError(f"region {region} lies outside the image of shape {self.shape}")

    def _push_undo(self, stroke: Stroke, state: int) -> None:
        self._undo.append((stroke, state))
        total = sum(s.nbytes for s, _ in self._undo)
        while len(self._undo) > 1 and total > self.max_history_bytes:
            dropped, self._base_state = self._undo.popleft()
            total -= dropped.nbytes

    def _committed(self, stroke: Stroke) -> None:
        self.revision += 1
        for listener in list(self.stroke_listeners):
            listener(stroke, self.revision)

    def _notify(self, region: Region) -> None:
        for listener in list(self.listeners):
            listener(region)


__all__ = ["IGNORE_INDEX", "Atom", "LabelDocument", "PaintGuard", "Region", "Snapshot", "Stroke", "union"]
