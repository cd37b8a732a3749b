"""The menus in the real window: every dock can be shown again from View, the smart tools' commands are in Tools,
and the smart tools' class list follows the project (put in through the window's public parts only)."""

from app.window.main_window import MainWindow
from tests.app.gui_helpers import make_project


def test_view_toggles_every_dock_and_tools_holds_the_smart_commands(qtbot, tmp_path):
    w = MainWindow()
    qtbot.addWidget(w)
    view = w.menus.view.actions()
    for dock in w.docks:
        assert dock.toggleViewAction() in view, dock.windowTitle()
    assert {w.smart_dock, w.navigator_dock} <= set(w.docks)
    tools = w.menus.tools.actions()
    for act in (w.acts.boundaries, w.acts.load_sam, w.acts.refine_uncertain, w.acts.cleanup):
        assert act in tools, act.text()
    assert [m.title() for m in (w.menus.file, w.menus.edit, w.menus.view, w.menus.tools, w.menus.images,
                                w.menus.model, w.menus.help)] == \
        [a.text() for a in w.menuBar().actions()]


def test_the_smart_panel_offers_the_project_classes(qtbot, tmp_path):
    w = MainWindow()
    qtbot.addWidget(w)
    assert w.smart_panel.names == []
    assert w.open_project(make_project(tmp_path / "p", n=1))
    assert w.smart_panel.names == [c.name for c in w.project.classes]
