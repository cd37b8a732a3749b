"""The smart tools as Qt-free gestures: superpixels and SAM, events fed by hand, no QApplication, a real document.

SAM's decoder is a stand-in that records its inputs and returns a box- or click-shaped `SamMask`; the
context keeps decode jobs until the test finishes them, as the decoder thread would deliver them later.
"""

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest

from app.core.editing import gestures
from app.core.editing.document import LabelDocument
from app.core.editing.gestures import LEFT, RIGHT
from app.core.editing.protection import PaintGuard
from app.core.smart import smart_gestures
from app.core.smart.superpixels import SuperpixelLevel
from engine.sam import SamMask

SHAPE = (40, 50)


class Decoder:
    """SAM's decoder as far as a gesture sees it: a box gives the box, a positive click a 7 x 7 square."""

    def __init__(self):
        self.calls: list[tuple] = []

    def segment(self, embedding, points, labels, box, mask_input):
        self.calls.append((points, labels, box, mask_input))
        mask = np.zeros(SHAPE, bool)
        if box is not None:
            y0, x0, y1, x1 = (int(v) for v in box)
            mask[y0:y1, x0:x1] = True
        for (y, x), positive in zip(points, labels, strict=True):
            mask[max(int(y) - 3, 0):int(y) + 4, max(int(x) - 3, 0):int(x) + 4] = bool(positive)
        return SamMask(mask, 0.9, np.full((1, 8, 8), len(self.calls), np.float32))

    def mask_logits(self, mask):
        return np.where(mask, 8.0, -8.0).astype(np.float32)[None]


@dataclass
class Session:
    """The smart gestures' context: the protocol the app's Editor implements (through its SmartTools)."""

    doc: LabelDocument
    current_class: int | None = 1
    brush_radius: float = 2.0
    level: SuperpixelLevel | None = None
    sam_model: Decoder | None = None
    embedding: object | None = None
    said: list = field(default_factory=list)
    jobs: list = field(default_factory=list)

    def say(self, text):
        self.said.append(text)

    def run_grabcut(self, box):
        raise AssertionError("no smart gesture runs GrabCut")

    def explain_at(self, pixel):
        raise AssertionError("no smart gesture explains")

    def superpixel_level(self):
        return self.level

    def sam_embedding(self):
        return self.embedding

    def run_decoder(self, work, on_result, on_failed):
        self.jobs.append((work, on_result, on_failed))

    def finish(self, index=None):
        """Deliver decode jobs (all, or the one at `index`) as the decoder thread would."""
        picked = self.jobs if index is None else [self.jobs[index]]
        self.jobs = [] if index is None else [j for i, j in enumerate(self.jobs) if i != index]
        for work, on_result, on_failed in picked:
            try:
                value = work()
            except Exception as exc:  # noqa: BLE001 - as JobRunner reports it
                on_failed(str(exc))
            else:
                on_result(value)


@pytest.fixture
def ctx():
    return Session(LabelDocument(np.zeros((*SHAPE, 3), np.uint8), num_classes=3))


@pytest.fixture
def sam(ctx):
    ctx.sam_model, ctx.embedding = Decoder(), SimpleNamespace(image_hw=SHAPE)
    g = smart_gestures.Sam(ctx)
    g.changes = []
    g.on_change = lambda: g.changes.append(g.preview())
    return g


def grid_level():
    """20 superpixels, each a 10 x 10 block: id 5 * row + column."""
    return SuperpixelLevel(np.arange(20, dtype=np.int32).reshape(4, 5), SHAPE)


def drag(g, points, button=LEFT):
    g.press(points[0], button)
    for p in points[1:]:
        g.move(p)
    g.release(points[-1], button)


def click(g, p, button=LEFT, **kw):
    g.press(p, button, **kw)
    g.release(p, button)


def kinds(g):
    shown = g.preview()
    return [] if shown is None else [p.kind for p in shown]


# -- superpixels --------------------------------------------------------------------------------------

def test_superpixel_drag_paints_whole_superpixels_as_one_undo_step(ctx):
    ctx.level = grid_level()
    drag(smart_gestures.Superpixel(ctx), [(5.5, 5.5), (5.5, 15.5), (5.5, 25.5)])
    assert (ctx.doc.labels[:10, :30] == 1).all() and (ctx.doc.labels[:, 30:] == 255).all()
    assert (ctx.doc.labels[10:] == 255).all() and not ctx.doc.in_stroke
    ctx.doc.undo()
    assert (ctx.doc.labels == 255).all() and not ctx.doc.can_undo


def test_superpixel_click_paints_one_and_the_right_button_erases(ctx):
    ctx.level = grid_level()
    ctx.doc.paint((0, 0), np.ones(SHAPE, bool), 2)
    g = smart_gestures.Superpixel(ctx)
    click(g, (15.5, 15.5))
    assert (ctx.doc.labels[10:20, 10:20] == 1).all() and (ctx.doc.labels == 1).sum() == 100
    click(g, (15.5, 15.5), RIGHT)
    click(g, (35.5, 45.5), RIGHT)
    assert (ctx.doc.labels[10:20, 10:20] == 255).all() and (ctx.doc.labels[30:, 40:] == 255).all()
    assert (ctx.doc.labels == 2).sum() == 40 * 50 - 200


def test_superpixels_keep_protected_classes_and_paint_only_over(ctx):
    ctx.level = grid_level()
    ctx.doc.paint((0, 0), np.ones((10, 3), bool), 2)
    ctx.doc.guard = PaintGuard(frozenset({2}))
    g = smart_gestures.Superpixel(ctx)
    click(g, (5.5, 5.5))
    assert (ctx.doc.labels[:10, :3] == 2).all() and (ctx.doc.labels[:10, 3:10] == 1).all()
    click(g, (5.5, 5.5), RIGHT)
    assert (ctx.doc.labels[:10, :3] == 2).all() and (ctx.doc.labels[:10, 3:10] == 255).all()
    ctx.doc.guard = PaintGuard(only_over=255)
    ctx.doc.paint((10, 0), np.ones((10, 5), bool), 0)
    click(g, (15.5, 5.5))
    assert (ctx.doc.labels[10:20, :5] == 0).all() and (ctx.doc.labels[10:20, 5:10] == 1).all()


def test_superpixels_not_computed_yet_say_so(ctx):
    g = smart_gestures.Superpixel(ctx)
    drag(g, [(5.5, 5.5), (5.5, 25.5)])
    ctx.level = SuperpixelLevel(np.zeros((2, 2), np.int32), (20, 20))  # another image's
    click(g, (5.5, 5.5))
    assert ctx.said == [smart_gestures.SUPERPIXELS_PENDING] * 2
    ctx.level, ctx.current_class = grid_level(), None
    click(g, (5.5, 5.5))
    assert ctx.said[-1] == gestures.PICK_A_CLASS
    assert (ctx.doc.labels == 255).all() and not ctx.doc.can_undo


def test_superpixel_cancel_mid_drag_closes_the_stroke(ctx):
    ctx.level = grid_level()
    g = smart_gestures.Superpixel(ctx)
    g.press((5.5, 5.5), LEFT)
    g.move((5.5, 15.5))
    g.cancel()
    assert not ctx.doc.in_stroke and ctx.doc.can_undo
    g.release((5.5, 45.5), LEFT)
    assert (ctx.doc.labels[:10, :20] == 1).all() and (ctx.doc.labels[:, 20:] == 255).all()


# -- SAM ----------------------------------------------------------------------------------------------

def test_sam_clicks_and_a_box_become_prompts_decoded_off_the_gui_thread(ctx, sam):
    click(sam, (10.5, 10.5))
    assert sam.prompt.points == [(10.5, 10.5)] and sam.prompt.labels == [1]
    assert sam.prompt.result is None and len(ctx.jobs) == 1  # decoded later, not in the click
    ctx.finish()
    first = sam.prompt.result
    assert first.mask.sum() == 49 and sam.mask is first.mask
    assert ctx.said[-1] == "SAM: 49 pixels, quality 0.90; Enter accepts"
    assert [p.kind for p in sam.changes[-1]] == ["mask"] and sam.preview()[0].color == smart_gestures.SAM_MASK_RGBA
    click(sam, (12.5, 12.5), RIGHT)
    ctx.finish()
    assert sam.prompt.labels == [1, 0]
    points, labels, box, mask_input = ctx.sam_model.calls[-1]
    assert labels == [1, 0] and box is None and mask_input is first.logits  # refines the last mask
    sam.press((20.0, 30.0), LEFT)
    sam.move((21.0, 31.0))  # under BOX_DRAG pixels: still a click
    assert kinds(sam) == ["mask"]
    sam.move((30.0, 45.0))
    assert kinds(sam) == ["mask", "box"] and sam.preview()[1].points == ((20.0, 30.0), (30.0, 45.0))
    sam.release((32.0, 44.0), LEFT)
    assert sam.prompt.box == (20.0, 30.0, 32.0, 44.0) and len(sam.prompt.points) == 2
    assert kinds(sam) == ["mask"]
    ctx.finish()
    assert ctx.sam_model.calls[-1][2] == (20.0, 30.0, 32.0, 44.0) and sam.mask[25, 35]


def test_a_short_drag_is_a_click_and_a_right_drag_never_a_box(ctx, sam):
    sam.press((10.0, 10.0), LEFT)
    sam.move((11.0, 12.0))
    sam.release((11.0, 12.0), LEFT)
    sam.press((30.0, 30.0), RIGHT)
    sam.move((39.0, 49.0))
    assert sam.preview() is None
    sam.release((39.0, 49.0), RIGHT)
    assert sam.prompt.points == [(10.0, 10.0), (30.0, 30.0)] and sam.prompt.labels == [1, 0]
    assert sam.prompt.box is None


def test_only_the_newest_decode_is_shown(ctx, sam):
    click(sam, (10.5, 10.5))
    click(sam, (20.5, 20.5))
    ctx.finish(0)  # the first click's mask arrives after the second click: dropped
    assert sam.prompt.result is None and sam.mask is None and sam.changes == []
    ctx.finish()
    assert sam.mask[20, 20] and sam.mask[10, 10]
    click(sam, (30.5, 30.5))
    assert sam.key("escape")
    ctx.finish()  # a mask for a dropped prompt
    assert sam.mask is None and sam.prompt.empty and sam.preview() is None


def test_enter_accepts_as_the_current_class_keeping_protected_pixels_in_one_undo_step(ctx, sam):
    ctx.doc.paint((0, 0), np.ones((40, 12), bool), 2)
    ctx.doc.guard = PaintGuard(frozenset({2}))
    ctx.current_class = 1
    sam.press((8.0, 8.0), LEFT)
    sam.move((20.0, 30.0))
    sam.release((20.0, 30.0), LEFT)
    assert not sam.key("enter")  # no mask yet: the key is left to others
    ctx.finish()
    undo_steps = len(ctx.doc._undo)
    assert sam.key("enter")
    assert (ctx.doc.labels[8:20, 12:30] == 1).all() and (ctx.doc.labels[:, :12] == 2).all()
    assert (ctx.doc.labels == 1).sum() == 12 * 18 and len(ctx.doc._undo) == undo_steps + 1
    assert sam.prompt.empty and sam.preview() is None
    ctx.doc.undo()
    assert (ctx.doc.labels == 1).sum() == 0 and (ctx.doc.labels[:, :12] == 2).all()


def test_a_mask_only_over_protected_pixels_writes_nothing_and_says_so(ctx, sam):
    ctx.doc.paint((0, 0), np.ones(SHAPE, bool), 2)
    ctx.doc.guard = PaintGuard(frozenset({2}))
    click(sam, (10.5, 10.5))
    ctx.finish()
    assert sam.key("enter")
    assert (ctx.doc.labels == 2).all() and ctx.said[-1] == smart_gestures.NOTHING_WRITTEN


def test_double_click_accepts_and_without_a_class_says_so(ctx, sam):
    click(sam, (10.5, 10.5))
    ctx.finish()
    ctx.current_class = None
    sam.double_click((10.5, 10.5), LEFT)
    assert ctx.said[-1] == gestures.PICK_A_CLASS and (ctx.doc.labels == 255).all()
    assert sam.prompt.result is not None  # the mask waits for a class
    ctx.current_class = 2
    sam.double_click((10.5, 10.5), LEFT)
    assert (ctx.doc.labels == 2).sum() == 49 and sam.prompt.empty


def test_escape_drops_and_backspace_takes_back_the_last_click(ctx, sam):
    assert not sam.key("escape") and not sam.key("backspace")  # nothing to drop: left to others
    click(sam, (10.5, 10.5))
    ctx.finish()
    click(sam, (20.5, 20.5))
    ctx.finish()
    assert sam.key("backspace")
    assert sam.prompt.points == [(10.5, 10.5)] and len(ctx.jobs) == 1  # decoded again
    ctx.finish()
    assert sam.mask[10, 10] and not sam.mask[20, 20]
    assert sam.key("backspace")
    assert sam.prompt.empty and sam.mask is None and sam.preview() is None and ctx.jobs == []
    click(sam, (10.5, 10.5))
    ctx.finish()
    assert sam.key("escape")
    assert sam.prompt.empty and sam.preview() is None and (ctx.doc.labels == 255).all()
    assert not ctx.doc.can_undo


def test_shift_click_starts_from_the_proposals_region(ctx, sam):
    proposal = np.zeros(SHAPE, np.uint8)
    proposal[5:25, 5:35] = 2
    ctx.doc.set_proposal(proposal)
    click(sam, (10.5, 10.5), shift=True)
    assert sam.prompt.start_mask.sum() == 20 * 30
    ctx.finish()
    mask_input = ctx.sam_model.calls[-1][3]
    assert mask_input.shape == (1, *SHAPE) and (mask_input[0] > 0).sum() == 20 * 30
    click(sam, (30.5, 40.5), shift=True)
    assert sam.prompt.start_mask.sum() == 20 * 30  # only the first click's region


def test_without_sam_a_click_says_what_is_missing_and_retries_once_ready(ctx):
    g = smart_gestures.Sam(ctx)
    click(g, (10.5, 10.5))
    assert ctx.said == [smart_gestures.LOAD_SAM] and ctx.jobs == []
    ctx.sam_model = Decoder()
    g.retry()
    assert ctx.said[-1] == smart_gestures.SAM_EMBEDDING and ctx.jobs == []
    ctx.embedding = SimpleNamespace(image_hw=SHAPE)
    g.retry()
    ctx.finish()
    assert g.prompt.result is not None and g.mask[10, 10]
    g.retry()  # it has its mask: nothing to decode
    assert ctx.jobs == []


def test_a_failed_decode_says_why_and_an_embedding_of_another_image_is_not_used(ctx, sam):
    ctx.sam_model.segment = lambda *a: (_ for _ in ()).throw(RuntimeError("out of memory"))
    click(sam, (10.5, 10.5))
    ctx.finish()
    assert ctx.said[-1] == "SAM failed: out of memory" and sam.mask is None
    ctx.embedding = SimpleNamespace(image_hw=(20, 20))
    sam.cancel()
    click(sam, (10.5, 10.5))
    assert ctx.jobs == []
