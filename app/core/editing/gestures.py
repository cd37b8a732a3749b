"""What each tool does with the mouse, without Qt: press / move / release over image coordinates.

A gesture turns points (continuous image coordinates `(y, x)`, see `app.core.editing.tools`) and buttons
(`LEFT`, `RIGHT`) into writes on the document through the pure functions of `app.core.editing.tools`. It
reaches the rest of the app only through a small `Context`: the document, the class to paint, the
brush radius, a line for the person, and two background jobs. Its `preview()` says what the canvas
should draw (a brush outline, a polygon, a box, a mask); the canvas draws nothing else of a tool. A
gesture whose preview changes outside an event (a background result) calls `on_change`.
The smart tools (superpixels, SAM) are in `app.core.smart.smart_gestures`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from app.core.editing import tools
from app.core.editing.document import IGNORE_INDEX, LabelDocument

Point = tuple[float, float]
LEFT, RIGHT = "left", "right"

PICK_A_CLASS = "Pick a class first (keys 1-9 or the class list)"
SEGMENT_FIRST = "This image has no proposal yet: segment it first (Ctrl+R)"
LARGER_BOX = "Drag a larger box around the object"


class Context(Protocol):
    """What a gesture needs from the editing session (the app's `Editor`)."""

    doc: LabelDocument | None
    brush_radius: float

    @property
    def current_class(self) -> int | None: ...
    def say(self, text: str) -> None: ...
    def run_grabcut(self, box: tuple[int, int, int, int]) -> None: ...
    def explain_at(self, pixel: tuple[int, int]) -> None: ...


@dataclass(frozen=True)
class Preview:
    """What the canvas shows of a gesture: `circle` (centre, radius), `polygon` (points, open), `box`
    (two corners), or `mask` (a bool array over the whole image); `color` RGBA, None: the default."""

    kind: str
    points: tuple[Point, ...] = ()
    radius: float = 0.0
    mask: np.ndarray | None = field(default=None, compare=False)
    color: tuple[int, int, int, int] | None = None


def _nothing() -> None:
    pass


class Gesture:
    """The default does nothing; subclasses override what they use."""

    shortcut = ""
    title = ""
    hint = ""
    sized = False

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.on_change: Callable[[], None] = _nothing  # the preview changed outside an event

    @property
    def doc(self) -> LabelDocument | None:
        return self.ctx.doc

    def press(self, p: Point, button: str) -> None: ...
    def move(self, p: Point) -> None: ...
    def release(self, p: Point, button: str) -> None: ...
    def double_click(self, p: Point, button: str) -> None: ...
    def leave(self) -> None: ...

    def key(self, name: str) -> bool:
        """`enter`, `escape`, `backspace`: True when the gesture used the key."""
        return False

    def cancel(self) -> None:
        """Drop any half-made gesture (switching tool or image)."""

    def preview(self) -> Preview | tuple[Preview, ...] | None:
        """What to draw now: one preview, several (drawn in order), or None."""
        return None

    def _class_or_say(self) -> int | None:
        value = self.ctx.current_class
        if value is None:
            self.ctx.say(PICK_A_CLASS)
        return value


class Brush(Gesture):
    """Paint the current class along the path; the right button (or the eraser) writes 255."""

    shortcut = "B"
    title = "Brush"
    hint = "Drag to paint the selected class; right-drag erases. [ and ] change the size."
    sized = True
    erase = False

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self._last: Point | None = None
        self._value = 0
        self._hover: Point | None = None

    def press(self, p, button):
        if self.doc is None:
            return
        if self.erase or button == RIGHT:
            self._value = IGNORE_INDEX
        else:
            value = self._class_or_say()
            if value is None:
                return
            self._value = value
        self.doc.begin_stroke()
        self._last = self._hover = p
        self._paint(p, p)

    def move(self, p):
        self._hover = p
        if self._last is not None:
            self._paint(self._last, p)
            self._last = p

    def release(self, p, button):
        if self._last is None:
            return
        self._paint(self._last, p)
        self._last = None
        self.doc.end_stroke()

    def leave(self):
        self._hover = None

    def cancel(self):
        if self._last is not None and self.doc is not None:
            self.doc.end_stroke()
        self._last = self._hover = None

    def preview(self):
        if self._hover is None:
            return None
        return Preview("circle", (self._hover,), float(self.ctx.brush_radius))

    def _paint(self, p0: Point, p1: Point) -> None:
        crop = tools.brush_segment(self.doc.shape, p0, p1, self.ctx.brush_radius)
        if crop is not None:
            self.doc.apply(crop[0], crop[1], self._value)


class Eraser(Brush):
    shortcut = "E"
    title = "Eraser"
    hint = "Drag to clear labels back to 'not labelled'. [ and ] change the size."
    erase = True


class Fill(Gesture):
    """Flood-fill the 4-connected region under the click with the current class (right click: erase)."""

    shortcut = "F"
    title = "Fill"
    hint = "Click to fill the connected region of equal labels with the selected class; right-click clears it."

    def press(self, p, button):
        if self.doc is None:
            return
        value = IGNORE_INDEX if button == RIGHT else self._class_or_say()
        if value is None:
            return
        crop = tools.flood_fill(self.doc.labels, p)
        if crop is not None:
            self.doc.paint(crop[0], crop[1], value)


class Polygon(Gesture):
    """Click corners; double-click, Enter or right-click closes and fills; Esc cancels; Backspace undoes a corner."""

    shortcut = "P"
    title = "Polygon"
    hint = ("Click to add corners; double-click, Enter or right-click closes and fills with the selected class. "
            "Esc cancels, Backspace removes the last corner.")

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.points: list[Point] = []
        self._hover: Point | None = None

    def press(self, p, button):
        if self.doc is None:
            return
        if button == RIGHT:
            self.close()
            return
        self.points.append(p)

    def double_click(self, p, button):
        if button != LEFT:
            return
        if not self.points or self.points[-1] != p:
            self.points.append(p)
        self.close()

    def move(self, p):
        self._hover = p

    def key(self, name):
        if not self.points:
            return False
        if name == "enter":
            self.close()
        elif name == "escape":
            self.cancel()
        elif name == "backspace":
            self.points.pop()
        else:
            return False
        return True

    def close(self) -> None:
        pts = list(self.points)
        self.cancel()
        if len(pts) >= 3 and self.doc is not None:
            crop = tools.polygon_mask(self.doc.shape, pts)
            if crop is not None:
                self.fill(crop)

    def fill(self, crop) -> None:
        value = self._class_or_say()
        if value is not None:
            self.doc.paint(crop[0], crop[1], value)

    def cancel(self):
        self.points = []

    def preview(self):
        if not self.points:
            return None
        tail = (self._hover,) if self._hover is not None else ()
        return Preview("polygon", tuple(self.points) + tail)


class AcceptRegion(Polygon):
    """Draw a polygon; the model's proposal is accepted as labels inside it."""

    shortcut = "R"
    title = "Accept proposal in region"
    hint = "Draw a polygon around the part of the proposal you agree with; closing it writes those labels."

    def fill(self, crop) -> None:
        if self.doc.proposal is None:
            self.ctx.say(SEGMENT_FIRST)
            return
        values = tools.accept_proposal(self.doc.proposal, self.doc.labels, crop)
        if values is not None:
            self.doc.paint(*values)


class GrabCut(Gesture):
    """Drag a box around an object; GrabCut (a background job) finds it and paints it with the current class."""

    shortcut = "G"
    title = "GrabCut"
    hint = "Drag a box around one object; it is cut out and painted with the selected class."

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self._start: Point | None = None
        self._end: Point | None = None

    def press(self, p, button):
        if self.doc is None or button != LEFT or self._class_or_say() is None:
            return
        self._start = self._end = p

    def move(self, p):
        if self._start is not None:
            self._end = p

    def release(self, p, button):
        if self._start is None:
            return
        (ay, ax), (by, bx) = self._start, p
        self.cancel()
        h, w = self.doc.shape
        box = (max(0, int(min(ay, by))), max(0, int(min(ax, bx))),
               min(h, int(max(ay, by)) + 1), min(w, int(max(ax, bx)) + 1))
        if box[2] - box[0] < 3 or box[3] - box[1] < 3:
            self.ctx.say(LARGER_BOX)
            return
        self.ctx.run_grabcut(box)

    def cancel(self):
        self._start = self._end = None

    def preview(self):
        if self._start is None:
            return None
        return Preview("box", (self._start, self._end))


class Attention(Gesture):
    """Click a pixel: the model's explanation maps for it appear in the attention panel and on the canvas."""

    shortcut = "A"
    title = "Attention"
    hint = "Click a pixel to see where the model looks when it labels it (CAM, attention layers, codewords)."

    def press(self, p, button):
        if self.doc is None or button != LEFT:
            return
        y, x = int(p[0] // 1), int(p[1] // 1)
        h, w = self.doc.shape
        if 0 <= y < h and 0 <= x < w:
            self.ctx.explain_at((y, x))


GESTURES: tuple[type[Gesture], ...] = (Brush, Eraser, Fill, Polygon, AcceptRegion, GrabCut, Attention)
