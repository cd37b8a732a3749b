"""The canvas: tiled overlays from label arrays, repainting only what changed, zoom, pan, and tools
driven by real mouse events on the viewport."""

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QWheelEvent
from PySide6.QtWidgets import QApplication

import engine
from app.canvas.interaction import AcceptRegionTool, BrushTool, EraserTool, FillTool, GrabCutTool, PolygonTool
from app.canvas.tiles import TILE, IndexLayer, rgba_lut
from app.canvas.view import Canvas
from app.core.editing.document import LabelDocument
from app.core.storage.project import Project
from app.services.editor import Editor

CLASSES = [engine.SegClass("background", (0, 0, 0)), engine.SegClass("road", (200, 40, 40)),
           engine.SegClass("car", (40, 200, 40))]


def real_editor(canvas, tmp_path, labels=None, shape=(120, 160)):
    """The app's Editor on a one-image project with the three CLASSES; messages are collected."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "project"
    folder.mkdir()
    engine.write_image(folder / "img.png", rng.integers(0, 255, (*shape, 3), dtype=np.uint8))
    if labels is not None:
        (folder / "labels").mkdir()
        engine.write_label(folder / "labels" / "img.png", labels)
    editor = Editor(canvas)
    editor.set_project(Project.open(folder, CLASSES))
    assert editor.open_image(0)
    editor.current_class, editor.brush_radius = 1, 3
    editor.messages = []
    editor.message.connect(editor.messages.append)
    canvas.set_zoom(2.0)
    canvas.centerOn(shape[1] / 2, shape[0] / 2)
    QApplication.processEvents()
    return editor


@pytest.fixture
def canvas(qtbot):
    c = Canvas()
    qtbot.addWidget(c)
    c.resize(640, 480)
    c.show()
    qtbot.waitExposed(c)
    return c


def show(canvas, shape=(120, 160), labels=None):
    rng = np.random.default_rng(0)
    doc = LabelDocument(rng.integers(0, 255, (*shape, 3), dtype=np.uint8), labels)
    canvas.set_document(doc, CLASSES)
    canvas.set_zoom(2.0)
    canvas.centerOn(shape[1] / 2, shape[0] / 2)
    QApplication.processEvents()
    return doc


def view_point(canvas, y, x) -> QPoint:
    """The viewport pixel over the centre of image pixel (y, x)."""
    return canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))


def test_lut_colours_classes_and_keeps_unlabelled_transparent():
    labels = np.array([[0, 1], [2, 255]], np.uint8)
    layer = IndexLayer(labels.shape, lambda: labels, rgba_lut([c.color for c in CLASSES]))
    img = layer._render(0, 0, 0, 2, 2)
    assert img.pixelColor(0, 0) == QColor(0, 0, 0, 255)
    assert img.pixelColor(1, 0) == QColor(200, 40, 40, 255)
    assert img.pixelColor(0, 1) == QColor(40, 200, 40, 255)
    assert img.pixelColor(1, 1).alpha() == 0


def test_proposal_shows_only_where_nothing_is_labelled():
    proposal = np.full((2, 2), 2, np.uint8)
    labels = np.array([[1, 255], [255, 255]], np.uint8)
    layer = IndexLayer(labels.shape, lambda: proposal, rgba_lut([c.color for c in CLASSES]), mask=lambda: labels)
    img = layer._render(0, 0, 0, 2, 2)
    assert img.pixelColor(0, 0).alpha() == 0
    assert img.pixelColor(1, 0) == QColor(40, 200, 40, 255)


def test_a_hatched_proposal_leaves_out_every_other_band():
    proposal = np.full((12, 12), 1, np.uint8)
    lut = rgba_lut([c.color for c in CLASSES])
    solid = IndexLayer(proposal.shape, lambda: proposal, lut)._render(0, 0, 0, 12, 12)
    hatched = IndexLayer(proposal.shape, lambda: proposal, lut, hatch=True)._render(0, 0, 0, 12, 12)
    alpha = np.array([[hatched.pixelColor(x, y).alpha() for x in range(12)] for y in range(12)])
    assert all(solid.pixelColor(x, y).alpha() == 255 for x in range(12) for y in range(12))
    assert 0.3 < (alpha == 0).mean() < 0.7  # stripes: about half transparent
    assert alpha[0, 0] == 255 and alpha[0, 3] == 0 and alpha[1, 2] == 0  # diagonal bands


def test_a_stroke_rerenders_only_the_tiles_it_touches(canvas):
    doc = show(canvas, shape=(1000, 1200))
    canvas.set_zoom(1.0)
    canvas.centerOn(300, 300)
    canvas.viewport().repaint()
    cached_before = canvas.labels.cached_tiles()
    rendered_before = canvas.labels.tiles_rendered
    assert cached_before >= 4  # the visible part of the image is cached in several tiles
    doc.begin_stroke()
    doc.apply((300, 300), np.ones((5, 5), bool), 1)
    doc.end_stroke()
    assert canvas.labels.cached_tiles() == cached_before - 1  # only the tile under the stroke was dropped
    canvas.viewport().repaint()
    assert canvas.labels.tiles_rendered - rendered_before == 1
    assert canvas.grab().toImage().pixelColor(canvas.mapFromScene(QPointF(302.5, 302.5))).red() > 100


def test_zoomed_out_large_images_draw_from_a_coarse_level(canvas):
    doc = LabelDocument(np.zeros((6000, 5000, 3), np.uint8))
    canvas.set_document(doc, CLASSES)
    canvas.fit()
    canvas.viewport().repaint()
    level = canvas.image.level_for_scale(canvas.zoom)
    assert level >= 3
    assert canvas.image.tiles_rendered <= (6000 // (TILE << level) + 1) * (5000 // (TILE << level) + 1)
    assert len(canvas.image.pyramid.levels) == level + 1


def test_brush_paints_along_real_mouse_events_as_one_undo_step(canvas, qtbot, tmp_path):
    editor = real_editor(canvas, tmp_path)
    doc = editor.doc
    canvas.set_tool(BrushTool(editor))
    vp = canvas.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=view_point(canvas, 20, 20))
    for x in range(24, 80, 4):
        qtbot.mouseMove(vp, view_point(canvas, 20, x))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=view_point(canvas, 20, 80))
    assert (doc.labels[20, 20:81] == 1).all()
    assert (doc.labels[20 - 3:20 + 4, 50] == 1).all() and doc.labels[30, 50] == 255
    assert doc.can_undo and not doc.in_stroke
    doc.undo()
    assert (doc.labels == 255).all()


def test_right_drag_with_the_brush_and_the_eraser_clear_labels(canvas, qtbot, tmp_path):
    editor = real_editor(canvas, tmp_path, labels=np.ones((120, 160), np.uint8))
    doc = editor.doc
    vp = canvas.viewport()
    canvas.set_tool(BrushTool(editor))
    qtbot.mousePress(vp, Qt.MouseButton.RightButton, pos=view_point(canvas, 10, 10))
    qtbot.mouseRelease(vp, Qt.MouseButton.RightButton, pos=view_point(canvas, 10, 10))
    assert doc.labels[10, 10] == 255
    canvas.set_tool(EraserTool(editor))
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=view_point(canvas, 50, 50))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=view_point(canvas, 50, 50))
    assert doc.labels[50, 50] == 255 and doc.labels[50, 60] == 1


def test_fill_and_polygon_tools(canvas, qtbot, tmp_path):
    labels = np.full((120, 160), 255, np.uint8)
    labels[:, 80] = 0  # a wall splits the image in two regions
    editor = real_editor(canvas, tmp_path, labels=labels)
    doc = editor.doc
    vp = canvas.viewport()
    canvas.set_tool(FillTool(editor))
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=view_point(canvas, 60, 20))
    assert (doc.labels[:, :80] == 1).all() and (doc.labels[:, 81:] == 255).all()
    editor.current_class = 2
    canvas.set_tool(PolygonTool(editor))
    for y, x in ((10, 100), (10, 140), (50, 140)):
        qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=view_point(canvas, y, x))
    qtbot.mouseDClick(vp, Qt.MouseButton.LeftButton, pos=view_point(canvas, 50, 100))
    assert doc.labels[30, 120] == 2 and doc.labels[60, 120] == 255
    assert canvas.tool.points == []


def test_polygon_backspace_removes_the_last_corner_and_escape_cancels(canvas, qtbot, tmp_path):
    editor = real_editor(canvas, tmp_path)
    doc = editor.doc
    canvas.set_tool(PolygonTool(editor))
    canvas.setFocus()
    vp = canvas.viewport()
    for y, x in ((10, 10), (10, 50), (50, 10), (90, 90)):
        qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=view_point(canvas, y, x))
    qtbot.keyClick(canvas, Qt.Key.Key_Backspace)  # the stray corner at (90, 90) goes
    assert [(round(p.y()), round(p.x())) for p in canvas.tool.points] == [(10, 10), (10, 50), (50, 10)]
    qtbot.mouseClick(vp, Qt.MouseButton.RightButton, pos=view_point(canvas, 50, 10))  # right-click closes
    assert doc.labels[20, 20] == 1 and doc.labels[60, 60] == 255 and canvas.tool.points == []
    for y, x in ((70, 70), (70, 100), (100, 100)):
        qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=view_point(canvas, y, x))
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    assert canvas.tool.points == [] and canvas.tool._path is None
    assert doc.labels[90, 95] == 255


def test_high_zoom_shows_crisp_pixels_and_a_pixel_grid(canvas, qtbot, tmp_path):
    editor = real_editor(canvas, tmp_path, shape=(40, 40))
    doc = editor.doc
    doc.image[:] = 0
    doc.image[::2, ::2] = 255  # a checkerboard of single pixels
    doc.image[1::2, 1::2] = 255
    canvas.set_document(doc, CLASSES)
    canvas.set_zoom(16.0)
    canvas.centerOn(20, 20)
    shot = canvas.grab().toImage()

    def colour(y, x):
        return shot.pixelColor(canvas.mapFromScene(QPointF(x, y))).red()

    # nearest neighbour: a quarter pixel from the edge looks like the centre, not a blend of neighbours
    assert colour(20.5, 20.5) == colour(20.5, 20.2) == colour(20.5, 20.8) == 255
    assert colour(20.5, 21.5) == colour(20.5, 21.2) == 0
    assert colour(20.5, 21.0) < 255 or colour(21.0, 20.5) < 255  # a grid line between pixels
    canvas.set_zoom(6.0)  # crisp, but too small for a grid: every screen pixel is one image pixel's colour
    canvas.centerOn(20, 20)
    shot = canvas.grab().toImage()
    assert {colour(20.5, x / 12) for x in range(200, 280)} == {0, 255}


def test_wheel_zooms_around_the_cursor(canvas):
    show(canvas)
    vp = canvas.viewport()
    pos = QPointF(200, 150)
    before = canvas.mapToScene(pos.toPoint())
    zoom = canvas.zoom
    event = QWheelEvent(pos, canvas.mapToGlobal(pos), QPoint(), QPoint(0, 240), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(vp, event)
    assert canvas.zoom > zoom * 1.3
    after = canvas.mapToScene(pos.toPoint())
    assert abs(after.x() - before.x()) < 1.0 and abs(after.y() - before.y()) < 1.0


def test_middle_drag_pans(canvas, qtbot):
    show(canvas)
    vp = canvas.viewport()
    centre = QPoint(320, 240)
    before = canvas.mapToScene(centre)
    qtbot.mousePress(vp, Qt.MouseButton.MiddleButton, pos=centre)
    qtbot.mouseMove(vp, centre + QPoint(40, 0))
    qtbot.mouseRelease(vp, Qt.MouseButton.MiddleButton, pos=centre + QPoint(40, 0))
    after = canvas.mapToScene(centre)
    assert after.x() < before.x() - 10  # the image moved right under the fixed view centre


def test_tools_tell_the_person_why_nothing_happened(canvas, qtbot, tmp_path):
    editor = real_editor(canvas, tmp_path)
    vp = canvas.viewport()
    editor.current_class = None
    canvas.set_tool(BrushTool(editor))
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=view_point(canvas, 20, 20))
    assert editor.messages[-1].startswith("Pick a class first")
    editor.current_class = 1
    canvas.set_tool(AcceptRegionTool(editor))
    for y, x in ((10, 10), (10, 40), (40, 40)):
        qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=view_point(canvas, y, x))
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    assert "segment it first" in editor.messages[-1]
    canvas.set_tool(GrabCutTool(editor))
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=view_point(canvas, 30, 30))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=view_point(canvas, 31, 31))
    assert editor.messages[-1].startswith("Drag a larger box")
    assert (editor.doc.labels == 255).all()


def test_layers_answer_shape_queries_after_a_right_drag(canvas, qtbot, tmp_path):
    """Hit-testing asks every item for its shape(); a layer attribute called `shape` once broke it."""
    editor = real_editor(canvas, tmp_path, labels=np.ones((120, 160), np.uint8))
    canvas.set_tool(BrushTool(editor))
    vp = canvas.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.RightButton, pos=view_point(canvas, 10, 10))
    qtbot.mouseMove(vp, view_point(canvas, 10, 30))
    qtbot.mouseRelease(vp, Qt.MouseButton.RightButton, pos=view_point(canvas, 10, 30))
    items = canvas.items(view_point(canvas, 10, 20))
    assert canvas.labels in items and canvas.image in items
    assert (editor.doc.labels[10, 10:31] == 255).all()
