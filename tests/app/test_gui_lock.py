"""Opening a folder whose lock another window holds, through the real window: the holder is named, and the
person may open it read-only or take the lock over (when that window is gone)."""

import json
import os

import pytest
from PySide6.QtWidgets import QMessageBox

from app.core.storage.project_lock import LOCK_NAME, read_lock
from app.flows.quit_flow import QuitQuestions
from app.window.main_window import MainWindow
from tests.app.gui_helpers import make_project


@pytest.fixture
def locked(tmp_path):
    folder = make_project(tmp_path / "project", n=2)
    lock = folder / ".segassist" / LOCK_NAME
    lock.parent.mkdir(exist_ok=True)
    lock.write_text(json.dumps({"holder": "ann", "pid": 4242, "host": "elsewhere",
                                "created": "2026-01-01T00:00:00+00:00", "instance": "feed"}))
    return folder


def answer(monkeypatch, text):
    """The lock question is answered with the button labelled `text`; its message is kept."""
    seen = {}

    def exec_(box):
        seen["text"] = box.text()
        seen["buttons"] = [b.text() for b in box.buttons()]
        button = next((b for b in box.buttons() if b.text() == text), None)
        (button or box.button(QMessageBox.StandardButton.Cancel)).click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", exec_)
    return seen


@pytest.mark.parametrize("choice", ["Take over the lock", "Open read-only", "Cancel"])
def test_a_held_lock_is_offered_with_its_holder(qtbot, monkeypatch, locked, choice):
    monkeypatch.setattr(QuitQuestions, "confirm_unsaved", lambda self: True)
    w = MainWindow()
    qtbot.addWidget(w)
    seen = answer(monkeypatch, choice)
    opened = w.open_project(locked)
    assert "ann on elsewhere" in seen["text"] and "Take over the lock" in seen["buttons"]
    lock = read_lock(locked / ".segassist" / LOCK_NAME)
    if choice == "Take over the lock":
        assert opened and w.project.read_only is None and lock.pid == os.getpid()
    elif choice == "Open read-only":
        assert opened and w.project.read_only and lock.host == "elsewhere"
    else:
        assert not opened and w.project is None and lock.host == "elsewhere"
