"""Qt tests run without a screen: a bare `pytest` gets the offscreen platform too."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
