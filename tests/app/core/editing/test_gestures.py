"""The tools as Qt-free gestures: events fed by hand, no QApplication, a real document."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from app.core.editing import gestures
from app.core.editing.document import LabelDocument
from app.core.editing.gestures import LEFT, RIGHT
from app.core.editing.protection import PaintGuard


@dataclass
class Session:
    """The gesture context: the protocol the app's Editor implements."""

    doc: LabelDocument
    current_class: int | None = 1
    brush_radius: float = 2.0
    said: list = field(default_factory=list)
    boxes: list = field(default_factory=list)
    explained: list = field(default_factory=list)

    def say(self, text):
        self.said.append(text)

    def run_grabcut(self, box):
        self.boxes.append(box)

    def explain_at(self, pixel):
        self.explained.append(pixel)


@pytest.fixture
def ctx():
    return Session(LabelDocument(np.zeros((40, 50, 3), np.uint8), num_classes=3))


def drag(g, points, button=LEFT):
    g.press(points[0], button)
    for p in points[1:]:
        g.move(p)
    g.release(points[-1], button)


def test_brush_paints_with_the_left_button_and_erases_with_the_right(ctx):
    g = gestures.Brush(ctx)
    drag(g, [(10.5, 5.5), (10.5, 25.5)])
    assert (ctx.doc.labels[10, 5:26] == 1).all() and ctx.doc.labels[20, 10] == 255
    assert not ctx.doc.in_stroke and ctx.doc.can_undo
    assert g.preview().kind == "circle" and g.preview().radius == 2.0
    drag(g, [(10.5, 10.5), (10.5, 12.5)], RIGHT)
    assert (ctx.doc.labels[10, 10:13] == 255).all() and ctx.doc.labels[10, 20] == 1
    g.leave()
    assert g.preview() is None


def test_eraser_erases_with_either_button(ctx):
    ctx.doc.paint((0, 0), np.ones((40, 50), bool), 2)
    for button in (LEFT, RIGHT):
        drag(gestures.Eraser(ctx), [(5.5, 5.5 + 20 * (button == RIGHT))], button)
    assert ctx.doc.labels[5, 5] == 255 and ctx.doc.labels[5, 25] == 255 and ctx.doc.labels[30, 30] == 2


def test_without_a_class_painting_tools_say_so_and_write_nothing(ctx):
    ctx.current_class = None
    drag(gestures.Brush(ctx), [(5.5, 5.5), (5.5, 9.5)])
    gestures.Fill(ctx).press((5.5, 5.5), LEFT)
    poly = gestures.Polygon(ctx)
    for p in ((1, 1), (1, 20), (20, 20)):
        poly.press(p, LEFT)
    assert poly.key("enter")
    gestures.GrabCut(ctx).press((1, 1), LEFT)
    assert ctx.said == [gestures.PICK_A_CLASS] * 4
    assert (ctx.doc.labels == 255).all() and not ctx.doc.can_undo


def test_fill_fills_the_region_left_and_clears_it_right(ctx):
    ctx.doc.paint((0, 25), np.ones((40, 1), bool), 0)  # a wall
    g = gestures.Fill(ctx)
    g.press((5.5, 5.5), LEFT)
    assert (ctx.doc.labels[:, :25] == 1).all() and (ctx.doc.labels[:, 26:] == 255).all()
    g.press((5.5, 5.5), RIGHT)
    assert (ctx.doc.labels[:, :25] == 255).all()


@pytest.mark.parametrize("close", ["enter", "right", "double"])
def test_polygon_closes_three_ways(ctx, close):
    g = gestures.Polygon(ctx)
    for p in ((2, 2), (2, 30), (30, 30)):
        g.press(p, LEFT)
    g.move((20, 2))
    assert g.preview().kind == "polygon" and len(g.preview().points) == 4
    if close == "enter":
        g.press((30, 2), LEFT)
        assert g.key("enter")
    elif close == "right":
        g.press((30, 2), LEFT)
        g.press((30, 2), RIGHT)
    else:
        g.press((30, 2), LEFT)
        g.double_click((30, 2), LEFT)
    assert ctx.doc.labels[15, 15] == 1 and ctx.doc.labels[35, 35] == 255
    assert g.points == [] and g.preview() is None


def test_polygon_backspace_and_escape(ctx):
    g = gestures.Polygon(ctx)
    assert not g.key("backspace")  # nothing to take back: the key is left to others
    for p in ((2, 2), (2, 30), (30, 30), (39, 49)):
        g.press(p, LEFT)
    assert g.key("backspace") and g.points == [(2, 2), (2, 30), (30, 30)]
    assert g.key("escape") and g.points == []
    assert (ctx.doc.labels == 255).all()


def test_accept_region_writes_the_proposal_inside_the_polygon_only(ctx):
    g = gestures.AcceptRegion(ctx)
    for p in ((0, 0), (0, 10), (10, 10), (10, 0)):
        g.press(p, LEFT)
    g.key("enter")
    assert ctx.said == [gestures.SEGMENT_FIRST]
    ctx.doc.set_proposal(np.full((40, 50), 2, np.uint8))
    for p in ((0, 0), (0, 10), (10, 10), (10, 0)):
        g.press(p, LEFT)
    g.press((10, 0), RIGHT)
    assert (ctx.doc.labels[:10, :10] == 2).all() and ctx.doc.labels[20, 20] == 255


def test_grabcut_asks_for_a_box_and_refuses_tiny_ones(ctx):
    g = gestures.GrabCut(ctx)
    g.press((5, 5), RIGHT)
    assert g.preview() is None
    g.press((5, 5), LEFT)
    g.move((20, 30))
    assert g.preview().kind == "box"
    g.release((20, 30), LEFT)
    assert ctx.boxes == [(5, 5, 21, 31)]
    drag(g, [(5, 5), (6, 6)])
    assert ctx.said[-1] == gestures.LARGER_BOX and len(ctx.boxes) == 1


def test_attention_explains_the_clicked_pixel_inside_the_image(ctx):
    g = gestures.Attention(ctx)
    g.press((12.7, 3.2), LEFT)
    g.press((12.7, 3.2), RIGHT)
    g.press((-1, 3), LEFT)
    assert ctx.explained == [(12, 3)]


def test_cancel_mid_stroke_closes_the_stroke(ctx):
    g = gestures.Brush(ctx)
    g.press((5.5, 5.5), LEFT)
    g.move((5.5, 15.5))
    g.cancel()
    assert not ctx.doc.in_stroke and ctx.doc.can_undo
    g.release((5.5, 20.5), LEFT)  # the release after a cancel paints nothing more
    assert ctx.doc.labels[5, 20] == 255


def paint_square(name, ctx):
    """Write over the square [10, 30) x [10, 30) with gesture `name` (left button; the eraser erases)."""
    g = getattr(gestures, name)(ctx)
    if name in ("Brush", "Eraser"):
        ctx.brush_radius = 1.0
        for y in range(10, 30):
            drag(g, [(y + 0.5, 10.5), (y + 0.5, 29.5)])
    elif name == "Fill":
        g.press((20.5, 20.5), LEFT)
    else:
        for p in ((10, 10), (10, 30), (30, 30), (30, 10)):
            g.press(p, LEFT)
        assert g.key("enter")


WRITERS = ["Brush", "Eraser", "Fill", "Polygon", "AcceptRegion"]


@pytest.mark.parametrize("name", WRITERS)
def test_every_writing_gesture_keeps_protected_classes(ctx, name):
    ctx.doc.set_proposal(np.full((40, 50), 1, np.uint8))
    ctx.doc.paint((0, 0), np.ones((40, 50), bool), 0)
    ctx.doc.paint((15, 15), np.ones((5, 5), bool), 2)
    before = ctx.doc.labels.copy()
    ctx.doc.guard = PaintGuard(frozenset({2}))
    paint_square(name, ctx)
    value = 255 if name == "Eraser" else 1
    inside = np.zeros((40, 50), bool)
    inside[8:32, 8:32] = True  # the square and a brush radius or a polygon edge around it
    changed = ctx.doc.labels != before
    assert (ctx.doc.labels[15:20, 15:20] == 2).all()  # protected
    assert changed.any() and (ctx.doc.labels[changed] == value).all()
    if name != "Fill":  # the fill's region is the whole image of class 0
        assert not (changed & ~inside).any()


@pytest.mark.parametrize("name", WRITERS)
def test_every_writing_gesture_paints_only_over_what_the_guard_allows(ctx, name):
    ctx.doc.set_proposal(np.full((40, 50), 1, np.uint8))
    ctx.doc.paint((10, 10), np.ones((10, 20), bool), 0)  # the upper half of the square is class 0
    before = ctx.doc.labels.copy()
    ctx.doc.guard = PaintGuard(only_over=255)
    paint_square(name, ctx)
    changed = ctx.doc.labels != before
    if name == "Eraser":  # erasing is limited by protected classes alone
        assert (ctx.doc.labels[10:20, 10:30] == 255).all()
    elif name == "Fill":  # the unlabelled region around the class-0 block
        assert (ctx.doc.labels[10:20, 10:30] == 0).all() and (ctx.doc.labels[changed] == 1).all()
        assert changed.sum() == 40 * 50 - 200
    else:
        assert (ctx.doc.labels[10:20, 10:30] == 0).all() and (ctx.doc.labels[20:30, 10:30] == 1).all()
