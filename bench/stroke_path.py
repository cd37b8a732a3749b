"""The path of one brush stroke from the canvas's mouse release to the label PNG and `segassist.json`.

    python -m bench.stroke_path              # the calls, in order, with their thread; then files and hops

Opens a small project in the real main window (offscreen), paints one stroke with real mouse events,
waits until the label file and the project file are written, and prints every call into the project's
own code made on the way that belongs to saving (drawing the canvas is left out). A hop is one call
from one function to another in the printed chain, or a handover to another thread or a timer.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Drawing, widgets and timers are not part of saving: their calls are left out of the trace.
SKIP = ("app/canvas/view.py", "app/canvas/tiles.py", "app/canvas/smart_interaction.py", "app/widgets/",
        "app/window/theme.py", "app/window/actions.py", "app/window/main_window.py", "app/window/smart_wiring.py",
        "app/core/view/", "app/core/editing/stroke.py", "app/core/editing/protection.py", "app/core/editing/tools.py",
        "app/flows/smart_tools.py", "app/flows/model_flow.py", "app/flows/segmenting.py", "app/flows/training_flow.py",
        "app/flows/quit_flow.py", "app/flows/label_transfer_flow.py", "app/services/model_service.py",
        "engine/classes.py")
KEEP_CANVAS = ("mouseReleaseEvent",)
PACKAGES = ("app", "engine", "training", "labelformats", "resources")  # the project's own code


def name_is_noise(name: str) -> bool:
    """Comprehensions, properties that only read state, and the job runner's own plumbing."""
    return "<" in name.split(".")[-1] or name.startswith("JobRunner.") and not name.endswith(".start")


def _rel(filename: str) -> str | None:
    if not os.path.isabs(filename):  # <frozen ...>, <string>: the standard library and generated code
        return None
    try:
        rel = Path(filename).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return None
    return None if rel.split("/")[0] not in PACKAGES else rel  # not a virtual environment in the checkout


def main() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    import engine
    from app.window.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    folder = Path(tempfile.mkdtemp()) / "project"
    folder.mkdir()
    rng = __import__("numpy").random.default_rng(0)
    for i in range(2):
        engine.write_image(folder / f"img{i}.png", rng.integers(0, 255, (48, 64, 3), dtype="uint8"))
    w = MainWindow()
    w.resize(1000, 700)
    w.show()
    assert w.open_project(folder)
    w.open_image(0)
    app.processEvents()
    label = folder / "labels" / "img0.png"
    project_file = folder / "segassist.json"
    before = project_file.stat().st_mtime_ns

    calls: list[tuple[str, str, str, int]] = []
    depth: dict[int, int] = {}

    def profile(frame, event, arg):
        tid = threading.get_ident()
        if event == "call":
            depth[tid] = depth.get(tid, 0) + 1
            rel = _rel(frame.f_code.co_filename)
            if rel is None or rel.startswith(("bench/", "tests/")) or name_is_noise(frame.f_code.co_qualname):
                return
            name = frame.f_code.co_qualname
            if any(rel.startswith(s) for s in SKIP) and name.split(".")[-1] not in KEEP_CANVAS:
                return
            calls.append((threading.current_thread().name, rel, name, depth[tid]))
        elif event == "return":
            depth[tid] = depth.get(tid, 1) - 1

    import app.services.workers

    run = app.services.workers.Job.run

    def traced_run(job):  # pool threads are not Python threads: trace them from inside
        sys.setprofile(profile)
        try:
            run(job)
        finally:
            sys.setprofile(None)

    app.services.workers.Job.run = traced_run
    vp = w.canvas.viewport()

    def at(y, x):
        return w.canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))

    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(10, 10))
    QTest.mouseMove(vp, at(10, 20))
    threading.setprofile(profile)
    sys.setprofile(profile)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(10, 20))
    deadline = 200
    while deadline and not (label.exists() and project_file.stat().st_mtime_ns != before
                            and not w.project.dirty and not w.project_saver.jobs.busy):
        QTest.qWait(50)
        deadline -= 1
    sys.setprofile(None)
    threading.setprofile(None)
    assert label.exists(), "the stroke never reached the label file"

    files = []
    for thread, rel, name, d in calls:
        short = "GUI" if thread == "MainThread" else "worker"
        print(f"{short:6} {'  ' * min(d, 30)}{rel}:{name}")
        if rel not in files:
            files.append(rel)
    print(f"\n{len(calls)} calls, {len(files)} files:")
    for f in files:
        print("  ", f)
    w.close()


if __name__ == "__main__":
    main()
