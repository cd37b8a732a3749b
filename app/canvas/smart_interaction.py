"""The canvas's side of the smart tools (superpixels, SAM): thin `Tool`s over `app.core.smart.smart_gestures`.

What they do is in the gestures; `editor` is their `SmartContext`. SAM's mask and box arrive as the
gesture's preview and are drawn by `Tool`; only Shift (start from the proposal) needs SAM's own press.
"""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.canvas.interaction import BUTTONS, Tool, _point, _tool
from app.core.smart import smart_gestures

SuperpixelTool = _tool(smart_gestures.Superpixel)


class SamTool(_tool(smart_gestures.Sam)):
    """Segment Anything: clicks (left: object, right: not object) or a dragged box; Enter accepts, Esc drops."""

    def press(self, pos, event):
        button = BUTTONS.get(event.button())
        if button is not None:
            shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            self.gesture.press(_point(pos), button, shift=shift)
        self._show()

    @property
    def prompt(self):
        """The object's prompts so far (`app.core.smart.sam_prompts.SamPrompt`)."""
        return self.gesture.prompt


SMART_TOOLS: tuple[type[Tool], ...] = (SuperpixelTool, SamTool)
