"""The canvas tools over superpixels and SAM, in the style of `app.interaction` (press/move/release)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsRectItem

from app.core.sam_prompts import SamPrompt, accept, proposal_region
from app.core.superpixels import SuperpixelPainter
from app.interaction import ERASE, Tool, _point, _preview_pen
from app.smart_tools import mask_pixmap


class SuperpixelTool(Tool):
    """Click or drag: every superpixel touched is painted whole with the current class (right button erases)."""

    shortcut = "S"
    title = "Superpixels"
    hint = ("Click or drag over superpixels to paint them whole with the selected class; right-drag erases. "
            "Shift+S shows their boundaries; the Smart tools panel picks coarse, medium or fine.")

    def __init__(self, editor):
        super().__init__(editor)
        self.painter: SuperpixelPainter | None = None

    def press(self, pos, event):
        if self.doc is None:
            return
        level = self.editor.smart.level()
        if level is None or level.shape != self.doc.shape:
            self.editor.message.emit("Superpixels are still being computed for this image")
            return
        value = ERASE if event.button() == Qt.MouseButton.RightButton else self.editor.current_class
        if value is None:
            return
        self.painter = SuperpixelPainter(self.doc, level)
        self.painter.press(_point(pos), value)

    def move(self, pos, event):
        if self.painter is not None:
            self.painter.move(_point(pos))

    def release(self, pos, event):
        if self.painter is not None:
            self.painter.release(_point(pos))
        self.painter = None

    def cancel(self):
        if self.painter is not None:
            self.painter.release()
        self.painter = None


class SamTool(Tool):
    """Segment Anything: clicks (left: object, right: not object) or a dragged box; Enter accepts, Esc drops."""

    shortcut = "M"
    title = "Segment Anything"
    hint = ("Click the object (right-click: not the object) or drag a box; each click refines the mask. "
            "Enter or double-click paints it with the selected class, Esc drops it, Backspace removes the last "
            "click. Shift+click starts from the proposal's region under the click.")

    def __init__(self, editor):
        super().__init__(editor)
        self.prompt = SamPrompt()
        self._generation = 0
        self._start: QPointF | None = None
        self._rect: QGraphicsRectItem | None = None
        self._mask_item: QGraphicsPixmapItem | None = None

    def press(self, pos, event):
        if self.doc is None:
            return
        self._start = QPointF(pos)
        self._positive = event.button() != Qt.MouseButton.RightButton
        self._from_proposal = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)

    def move(self, pos, event):
        if self._start is None or not self._positive or (pos - self._start).manhattanLength() < 4:
            return
        if self._rect is None or self._rect.scene() is None:
            self._rect = QGraphicsRectItem()
            self._rect.setPen(_preview_pen(QColor(120, 220, 255), dashed=True))
            self.canvas.add_preview(self._rect)
        self._rect.setRect(QRectF(self._start, pos).normalized())

    def release(self, pos, event):
        if self._start is None:
            return
        start, self._start = self._start, None
        if self._rect is not None and self._rect.scene() is not None:
            self._rect.scene().removeItem(self._rect)
            self._rect = None
            r = QRectF(start, pos).normalized()
            self.prompt.box = (r.top(), r.left(), r.bottom(), r.right())
        else:
            point = _point(start)
            if self._from_proposal and self.doc.proposal is not None and self.prompt.start_mask is None:
                self.prompt.start_mask = proposal_region(self.doc.proposal, point)
            self.prompt.add_point(point, self._positive)
        self.run()

    def run(self) -> None:
        """Decode the prompts on SAM's decoder thread; the newest request's mask is shown."""
        smart = self.editor.smart
        emb = smart.embedding()
        if emb is None or self.prompt.empty or emb.image_hw != self.doc.shape:
            return
        self._generation += 1
        generation, prompt, model = self._generation, self.prompt, smart.sam
        args = prompt.inputs(model)

        def done(result) -> None:
            if generation != self._generation or prompt is not self.prompt:
                return  # a newer click, or the prompt was dropped
            prompt.result = result
            self._show(result.mask)
            self.editor.message.emit(f"SAM: {int(result.mask.sum())} pixels, quality {result.score:.2f}; "
                                     "Enter accepts")

        smart.decode_jobs.start("SAM", lambda job: model.segment(emb, *args), on_result=done,
                                on_failed=lambda msg: self.editor.message.emit(f"SAM failed: {msg}"))

    def _show(self, mask) -> None:
        self._drop_mask()
        item = QGraphicsPixmapItem(mask_pixmap(mask, (80, 200, 255, 110)))
        item.setZValue(60)
        self._mask_item = self.canvas.add_preview(item)

    def _drop_mask(self) -> None:
        if self._mask_item is not None and self._mask_item.scene() is not None:
            self._mask_item.scene().removeItem(self._mask_item)
        self._mask_item = None

    def double_click(self, pos, event):
        self.accept()

    def accept(self) -> None:
        result, value = self.prompt.result, self.editor.current_class
        if result is None or value is None or self.doc is None:
            return
        accept(self.doc, result.mask, value)
        self.cancel()

    def key(self, event):
        k = event.key()
        if k in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.prompt.result is not None:
            self.accept()
            return True
        if k == Qt.Key.Key_Escape and not self.prompt.empty:
            self.cancel()
            return True
        if k == Qt.Key.Key_Backspace and self.prompt.points:
            self.prompt.remove_last()
            if self.prompt.empty:
                self._drop_mask()
            else:
                self.run()
            return True
        return False

    def cancel(self):
        self.prompt = SamPrompt()
        self._generation += 1
        self._start = None
        if self._rect is not None and self._rect.scene() is not None:
            self._rect.scene().removeItem(self._rect)
        self._rect = None
        self._drop_mask()


SMART_TOOLS: tuple[type[Tool], ...] = (SuperpixelTool, SamTool)
