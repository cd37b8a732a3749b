"""A calm dark theme (Fusion style): images read best on a dark, neutral surround."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

STYLESHEET = """
QMainWindow::separator { background: #25272b; width: 3px; height: 3px; }
QDockWidget { titlebar-close-icon: none; font-weight: 600; }
QDockWidget::title { background: #2b2d31; padding: 6px 8px; border-bottom: 1px solid #1d1f22; }
QToolBar { background: #2b2d31; border: none; spacing: 2px; padding: 3px; }
QToolButton { border-radius: 5px; padding: 4px; }
QToolButton:hover { background: #3a3d43; }
QToolButton:checked { background: #34507a; }
QStatusBar { background: #2b2d31; color: #c8ccd2; }
QStatusBar QLabel { padding: 0 6px; }
QListWidget, QPlainTextEdit { background: #202226; border: 1px solid #1a1b1e; border-radius: 4px; }
QListWidget::item { padding: 3px 2px; }
QListWidget::item:selected { background: #34507a; color: white; }
QGroupBox { border: 1px solid #3a3d43; border-radius: 6px; margin-top: 12px; padding-top: 6px; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; color: #9aa3ad; }
QPushButton { background: #3a3d43; border: 1px solid #2a2c30; border-radius: 5px; padding: 5px 10px; }
QPushButton:hover { background: #454951; }
QPushButton:pressed { background: #2f3237; }
QPushButton:disabled { color: #6f747c; background: #303236; }
QPushButton[accent="true"] { background: #2f6fc0; border-color: #2a5fa4; color: white; font-weight: 600; }
QPushButton[accent="true"]:hover { background: #3a7fd4; }
QPushButton[accent="true"]:disabled { background: #2d3f57; color: #8393a8; }
QProgressBar { border: 1px solid #2a2c30; border-radius: 4px; background: #202226; text-align: center;
               height: 16px; }
QProgressBar::chunk { background: #2f6fc0; border-radius: 3px; }
QTabBar::tab { background: #2b2d31; padding: 6px 12px; border: none; }
QTabBar::tab:selected { background: #34373c; color: white; }
QLabel[hint="true"] { color: #8e96a0; }
QLabel[title="true"] { font-size: 14px; font-weight: 600; color: #e6e8eb; }
"""


def apply_theme(app: QApplication) -> None:
    """Fusion style, a dark palette and a few stylesheet touches."""
    app.setStyle("Fusion")
    pal = QPalette()
    base, window, text = QColor(32, 34, 38), QColor(43, 45, 49), QColor(222, 225, 230)
    for role, color in (
        (QPalette.ColorRole.Window, window), (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base), (QPalette.ColorRole.AlternateBase, QColor(38, 40, 44)),
        (QPalette.ColorRole.ToolTipBase, QColor(50, 53, 58)), (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, QColor(52, 55, 60)),
        (QPalette.ColorRole.ButtonText, text), (QPalette.ColorRole.BrightText, QColor(255, 90, 90)),
        (QPalette.ColorRole.Highlight, QColor(52, 80, 122)),
        (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
        (QPalette.ColorRole.Link, QColor(96, 166, 250)), (QPalette.ColorRole.PlaceholderText, QColor(120, 126, 134)),
    ):
        pal.setColor(role, color)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(112, 118, 126))
    app.setPalette(pal)
    app.setStyleSheet(STYLESHEET)
