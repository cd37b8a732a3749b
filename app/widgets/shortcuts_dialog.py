"""The keyboard and mouse reference (F1)."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

SHORTCUTS = (
    ("Tools", (
        ("B", "Brush: drag to paint the selected class (right-drag erases)"),
        ("E", "Eraser"),
        ("F", "Fill the connected region under the click"),
        ("P", "Polygon: click corners; double-click, Enter or right-click closes"),
        ("R", "Accept the proposal inside a polygon"),
        ("G", "GrabCut: drag a box around an object"),
        ("A", "Attention: click a pixel to see what the model looks at"),
        ("S", "Superpixels: click or drag to paint whole superpixels (right-drag erases)"),
        ("Shift+S", "Show or hide the superpixel boundaries"),
        ("M", "Segment Anything: click the object (right-click: not it) or drag a box; Enter accepts"),
        ("Shift+click (M)", "Segment Anything starting from the proposal's region under the click"),
        ("Backspace, Esc (M)", "Remove the last click; drop the mask"),
        ("Shift+U", "Refine the proposal's uncertain regions with Segment Anything"),
        ("Ctrl+Shift+L", "Clean up labels: fill holes, remove islands, smooth boundaries"),
        ("[  ]", "Smaller / larger brush"),
        ("1 – 9", "Select class 1 to 9"),
    )),
    ("Edit", (
        ("Ctrl+Z", "Undo the last stroke"),
        ("Ctrl+Shift+Z, Ctrl+Y", "Redo"),
        ("Shift+A", "Accept the proposal where nothing is labelled"),
        ("Ctrl+S", "Save the labels now (they are also saved automatically)"),
        ("Ctrl+Return", "Mark the image reviewed"),
    )),
    ("View", (
        ("Wheel", "Zoom around the cursor"),
        ("Space+drag, middle-drag", "Pan"),
        ("Ctrl+0", "Fit the image in the window"),
        ("Ctrl++ / Ctrl+-", "Zoom in / out"),
        ("Shift+P", "Show or hide the proposal"),
        ("H", "Cycle the heat map: none, low confidence, entropy"),
    )),
    ("Images and model", (
        ("Page Down / Page Up", "Next / previous image"),
        ("N", "Next most uncertain image"),
        ("Ctrl+R", "Segment the current image"),
        ("Ctrl+Shift+R", "Segment all images"),
        ("F1", "This list"),
    )),
)


def shortcuts_html() -> str:
    rows = []
    for group, items in SHORTCUTS:
        rows.append(f"<tr><td colspan=2 style='padding-top:10px'><b>{group}</b></td></tr>")
        rows += [f"<tr><td style='padding-right:18px;color:#8ec1ff'><code>{k}</code></td><td>{v}</td></tr>"
                 for k, v in items]
    return "<table>" + "".join(rows) + "</table>"


class ShortcutsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard and mouse")
        text = QTextBrowser()
        text.setHtml(shortcuts_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(buttons)
        self.resize(560, 720)
