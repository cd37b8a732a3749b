"""The smart tools as Qt-free gestures: painting whole superpixels, and Segment Anything's clicks and boxes.

They extend `app.core.editing.gestures` over a `SmartContext`: the superpixels of the open image, the loaded SAM
model and the open image's embedding, and a way to decode off the GUI thread. SAM's mask reaches the
gesture through a callback; the gesture keeps it as its preview and calls `on_change` so the canvas
redraws. Writes go through the document, whose `PaintGuard` keeps protected classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from app.core.editing.document import IGNORE_INDEX
from app.core.editing.gestures import RIGHT, Context, Gesture, Point, Preview
from app.core.smart.sam_prompts import SamPrompt, accept, proposal_region
from app.core.smart.superpixels import SuperpixelLevel, SuperpixelPainter

SUPERPIXELS_PENDING = "Superpixels are still being computed for this image"
LOAD_SAM = "Load a SAM 2 checkpoint first (Tools > Load SAM 2 checkpoint…)"
SAM_EMBEDDING = "SAM is still embedding this image; the mask follows the click once it is ready"
NOTHING_WRITTEN = "Nothing written: the mask lies on protected pixels or already has this class"
SAM_MASK_RGBA = (80, 200, 255, 110)
SAM_BOX_RGBA = (120, 220, 255, 255)
BOX_DRAG = 4  # image pixels (|dy| + |dx|) a press must move before it draws a box instead of clicking


class SamDecoder(Protocol):
    """The part of `engine.sam.SamModel` a gesture calls."""

    def segment(self, embedding, points, labels, box, mask_input): ...
    def mask_logits(self, mask: np.ndarray) -> np.ndarray: ...


class SmartContext(Context, Protocol):
    """What the smart gestures need beyond `Context` (the app's Editor answers through its SmartTools)."""

    @property
    def sam_model(self) -> SamDecoder | None:
        """The loaded SAM model, None before one is loaded."""

    def superpixel_level(self) -> SuperpixelLevel | None:
        """The open image's superpixels at the chosen scale; None while they are computed."""

    def sam_embedding(self) -> object | None:
        """The open image's SAM embedding (with `image_hw`); None while it is computed."""

    def run_decoder(self, work: Callable[[], object], on_result: Callable[[object], None],
                    on_failed: Callable[[str], None]) -> None:
        """Run `work` off the GUI thread; `on_result(value)` or `on_failed(why)` later, on the GUI thread."""


class Superpixel(Gesture):
    """Click or drag: every superpixel touched is painted whole with the current class (right button erases)."""

    shortcut = "S"
    title = "Superpixels"
    hint = ("Click or drag over superpixels to paint them whole with the selected class; right-drag erases. "
            "Shift+S shows their boundaries; the Smart tools panel picks coarse, medium or fine.")

    def __init__(self, ctx: SmartContext):
        super().__init__(ctx)
        self.painter: SuperpixelPainter | None = None

    def press(self, p, button):
        if self.doc is None:
            return
        level = self.ctx.superpixel_level()
        if level is None or level.shape != self.doc.shape:
            self.ctx.say(SUPERPIXELS_PENDING)
            return
        value = IGNORE_INDEX if button == RIGHT else self._class_or_say()
        if value is None:
            return
        self.painter = SuperpixelPainter(self.doc, level)
        self.painter.press(p, value)

    def move(self, p):
        if self.painter is not None:
            self.painter.move(p)

    def release(self, p, button):
        if self.painter is not None:
            self.painter.release(p)
        self.painter = None

    def cancel(self):
        if self.painter is not None:
            self.painter.release()
        self.painter = None


class Sam(Gesture):
    """Segment Anything: clicks (left: object, right: not object) or a dragged box; Enter accepts, Esc drops."""

    shortcut = "M"
    title = "Segment Anything"
    hint = ("Click the object (right-click: not the object) or drag a box; each click refines the mask. "
            "Enter or double-click paints it with the selected class, Esc drops it, Backspace removes the last "
            "click. Shift+click starts from the proposal's region under the click.")

    def __init__(self, ctx: SmartContext):
        super().__init__(ctx)
        self.prompt = SamPrompt()
        self.mask: np.ndarray | None = None  # the mask shown: the newest decoded one
        self._generation = 0
        self._start: Point | None = None
        self._end: Point | None = None
        self._boxing = False
        self._positive = True
        self._from_proposal = False

    def press(self, p, button, shift: bool = False):
        """`shift`: the first click starts from the proposal's region under it."""
        if self.doc is None:
            return
        self._start, self._end, self._boxing = p, p, False
        self._positive = button != RIGHT
        self._from_proposal = bool(shift)

    def move(self, p):
        if self._start is None or not self._positive:
            return
        if abs(p[0] - self._start[0]) + abs(p[1] - self._start[1]) < BOX_DRAG:
            return
        self._boxing, self._end = True, p

    def release(self, p, button):
        if self._start is None:
            return
        start, boxing = self._start, self._boxing
        self._start = self._end = None
        self._boxing = False
        if boxing:
            (ay, ax), (by, bx) = start, p
            self.prompt.box = (min(ay, by), min(ax, bx), max(ay, by), max(ax, bx))
        else:
            if self._from_proposal and self.doc.proposal is not None and self.prompt.start_mask is None:
                self.prompt.start_mask = proposal_region(self.doc.proposal, start)
            self.prompt.add_point(start, self._positive)
        self.run()

    def double_click(self, p, button):
        self.accept()

    def run(self) -> None:
        """Decode the prompts off the GUI thread; only the newest request's mask is kept."""
        model = self.ctx.sam_model
        if model is None:
            self.ctx.say(LOAD_SAM)
            return
        emb = self.ctx.sam_embedding()
        if emb is None:
            self.ctx.say(SAM_EMBEDDING)
            return
        if self.doc is None or self.prompt.empty or tuple(emb.image_hw) != self.doc.shape:
            return
        self._generation += 1
        generation, prompt = self._generation, self.prompt
        args = prompt.inputs(model)  # a copy: the decoder thread never sees later clicks

        def done(result) -> None:
            if generation != self._generation or prompt is not self.prompt:
                return  # a newer click, or the prompt was dropped
            prompt.result = result
            self.mask = result.mask
            self.on_change()
            self.ctx.say(f"SAM: {int(result.mask.sum())} pixels, quality {result.score:.2f}; Enter accepts")

        self.ctx.run_decoder(lambda: model.segment(emb, *args), done,
                             lambda why: self.ctx.say(f"SAM failed: {why}"))

    def retry(self) -> None:
        """Decode prompts that are still waiting for a mask (SAM or the embedding has become ready)."""
        if not self.prompt.empty and self.prompt.result is None:
            self.run()

    def accept(self) -> None:
        """Paint the mask with the current class as one undo step (protected classes stay), then drop it."""
        result = self.prompt.result
        if result is None or self.doc is None:
            return
        value = self._class_or_say()
        if value is None:
            return
        if accept(self.doc, result.mask, value) is None:
            self.ctx.say(NOTHING_WRITTEN)
        self.cancel()

    def key(self, name):
        if name == "enter" and self.prompt.result is not None:
            self.accept()
            return True
        if name == "escape" and not self.prompt.empty:
            self.cancel()
            return True
        if name == "backspace" and self.prompt.points:
            self.prompt.remove_last()
            if self.prompt.empty:
                self.mask = None
            else:
                self.run()
            return True
        return False

    def cancel(self):
        self.prompt = SamPrompt()
        self.mask = None
        self._generation += 1
        self._start = self._end = None
        self._boxing = False

    def preview(self):
        shown = []
        if self.mask is not None:
            shown.append(Preview("mask", mask=self.mask, color=SAM_MASK_RGBA))
        if self._boxing:
            shown.append(Preview("box", (self._start, self._end), color=SAM_BOX_RGBA))
        return tuple(shown) or None


SMART_GESTURES: tuple[type[Gesture], ...] = (Superpixel, Sam)
