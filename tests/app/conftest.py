"""Qt tests run without a screen: a bare `pytest` gets the offscreen platform too.

An exception inside a Qt override (paintEvent, shape, ...) or a slot fails the test: pytest-qt's
exception capture is on for every test (never disable it with `qt_no_exception_capture`), and a hook
the app installs (`app.cli`) passes exceptions on to it and is removed after each test.
"""

import os
import sys

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _exceptions_fail_the_test(request):
    marker = request.node.get_closest_marker("qt_no_exception_capture")
    assert marker is None, "tests must not switch off pytest-qt's exception capture"
    assert not request.config.getini("qt_no_exception_capture"), "qt_no_exception_capture must stay off"
    hook = sys.excepthook
    yield
    sys.excepthook = hook
