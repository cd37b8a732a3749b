"""The window's actions (shortcuts and tooltips), toolbar and menus; every slot lives elsewhere."""

from __future__ import annotations

from types import SimpleNamespace

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QSizePolicy, QToolBar, QWidget

from app.widgets.icons import icon
from app.widgets.shortcuts_dialog import ShortcutsDialog

TOOL_ICONS = {"B": "brush", "E": "eraser", "F": "fill", "P": "polygon", "R": "accept_region", "G": "grabcut",
              "A": "attention", "S": "superpixels", "M": "sam"}


def action(w, text: str, slot, shortcut=None, icon_name: str | None = None, tip: str | None = None,
           checkable: bool = False) -> QAction:
    """An action of window `w` (its shortcut works wherever the focus is), its tooltip naming the shortcut."""
    act = QAction(text, w)
    if icon_name:
        act.setIcon(icon(icon_name))
    if shortcut is not None:
        shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
        act.setShortcuts([QKeySequence(s) for s in shortcuts])
    keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in act.shortcuts())
    act.setToolTip(f"{tip or text.replace('…', '').replace('&', '')}" + (f"  [{keys}]" if keys else ""))
    act.setCheckable(checkable)
    act.triggered.connect(slot)
    w.addAction(act)  # shortcuts work wherever the focus is in the window
    return act


def _fill(menu, actions) -> None:
    for act in actions:
        if act is None:
            menu.addSeparator()
        else:
            menu.addAction(act)


def build_actions(w) -> SimpleNamespace:
    """Create the actions of main window `w`, its toolbar and menus (`w.menus`, by name); returns the actions by
    name."""
    def a(*args, **kwargs):
        return action(w, *args, **kwargs)

    ed, canvas, models = w.editor, w.canvas, w.models
    acts = SimpleNamespace(
        open=a("&Open folder…", w.project_flow.ask_open, QKeySequence.StandardKey.Open, "open",
               "Open a folder of images as a project"),
        save=a("&Save labels", ed.save_all, QKeySequence.StandardKey.Save, "save"),
        import_labels=a("Import labels…", w.transfer.ask_import, None, None,
                        "Bring in labels or another tool's predictions (masks, labelme, COCO, VOC, Cityscapes…)"),
        undo_import=a("Undo last import", w.transfer.undo_last_import, None, None,
                      "Write back the labels the last import replaced, in every image it touched"),
        export_labels=a("Export…", w.transfer.ask_export, None, None,
                        "Write the labels as masks, COCO, labelme, YOLO, VOC or Cityscapes into a folder"),
        export_onnx=a("Export model to ONNX…", w.model_flow.ask_export_onnx),
        quit=a("&Quit", w.close, QKeySequence.StandardKey.Quit),
        undo=a("&Undo", ed.undo, QKeySequence.StandardKey.Undo, "undo", "Undo the last stroke"),
        redo=a("&Redo", ed.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], "redo"),
        accept=a("Accept proposal", ed.accept_proposal, "Shift+A", "accept",
                 "Accept the model's proposal wherever nothing is labelled yet"),
        fit=a("Fit image", canvas.fit, "Ctrl+0", "fit"),
        zoom_in=a("Zoom in", lambda: canvas.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn),
        zoom_out=a("Zoom out", lambda: canvas.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut),
        toggle_proposal=a("Show proposal", w.tool_options.show_proposal.toggle, "Shift+P"),
        cycle_heat=a("Cycle heat map", w.cycle_heat, "H"),
        segment=a("Segment image", w.segmenting.current, "Ctrl+R", "segment", "Propose labels for the current image"),
        segment_all=a("Segment all images", w.segmenting.all, "Ctrl+Shift+R", "segment_all",
                      "Propose labels for every image"),
        cancel=a("Cancel", models.cancel, None, "stop", "Cancel the running model job"),
        new_model=a("New model…", w.model_flow.ask_new),
        open_model=a("Open model…", w.model_flow.ask_open),
        import_model=a("Import mmsegmentation checkpoint…", w.model_flow.ask_import),
        adopt_classes=a("Use the model's classes", w.model_flow.adopt_classes, None, None,
                        "Give the project the active model's class names and colours (before labelling)"),
        next=a("Next image", lambda: w.step_image(1), "PgDown"),
        prev=a("Previous image", lambda: w.step_image(-1), "PgUp"),
        next_uncertain=a("Next uncertain image", w.next_uncertain, "N", "next"),
        reviewed=a("Mark reviewed", w.mark_reviewed, "Ctrl+Return", "reviewed"),
        help=a("Keyboard and mouse…", lambda: ShortcutsDialog(w).exec(), "F1", "help"),
        smaller=a("Smaller brush", lambda: w.brush_step(-1), "["),
        larger=a("Larger brush", lambda: w.brush_step(1), "]"),
    )
    for i in range(9):
        a(f"Class {i + 1}", lambda _=False, i=i: w.select_class(i), str(i + 1))
    acts.tool_group = QActionGroup(w)
    acts.tools = {}
    for key, tool in w.tools.items():
        act = a(tool.title, lambda _=False, k=key: w.select_tool(k), key, TOOL_ICONS[key],
                f"{tool.title}: {tool.hint}", checkable=True)
        acts.tool_group.addAction(act)
        acts.tools[key] = act

    bar = QToolBar("Main")
    bar.setObjectName("main-toolbar")
    bar.setMovable(False)
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    groups = ([acts.open, acts.save], list(acts.tools.values()), [acts.undo, acts.redo, acts.fit],
              [acts.segment, acts.segment_all, acts.accept], [acts.next_uncertain, acts.reviewed])
    for i, group in enumerate(groups):
        if i:
            bar.addSeparator()
        for act in group:
            bar.addAction(act)
    spacer = QWidget()
    spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    bar.addWidget(spacer)
    bar.addAction(acts.help)
    w.addToolBar(bar)

    mb = w.menuBar()
    w.menus = menus = SimpleNamespace(**{name: mb.addMenu(title) for name, title in (
        ("file", "&File"), ("edit", "&Edit"), ("view", "&View"), ("tools", "&Tools"), ("images", "&Images"),
        ("model", "&Model"), ("help", "&Help"))})
    _fill(menus.file, (acts.open, acts.save, None, acts.import_labels, acts.undo_import, acts.export_labels,
                       acts.export_onnx, None, acts.quit))
    _fill(menus.edit, (acts.undo, acts.redo, None, acts.accept, acts.reviewed))
    _fill(menus.view, (acts.fit, acts.zoom_in, acts.zoom_out, None, acts.toggle_proposal, acts.cycle_heat, None))
    for dock in w.docks:
        menus.view.addAction(dock.toggleViewAction())
    _fill(menus.tools, (*acts.tools.values(), None, acts.smaller, acts.larger))
    _fill(menus.images, (acts.next, acts.prev, acts.next_uncertain, acts.reviewed))
    _fill(menus.model, (acts.new_model, acts.open_model, acts.import_model, acts.adopt_classes, None, acts.segment,
                        acts.segment_all, acts.cancel, None, acts.export_onnx))
    _fill(menus.help, (acts.help,))
    return acts
