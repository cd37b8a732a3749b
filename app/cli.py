"""`segassist [FOLDER] [--model FILE] [--sample] [--screenshot PNG]`: open the desktop app."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
from pathlib import Path

DEFAULT_SAMPLE = Path("sample-project")
SCREENSHOT_TIMEOUT_MS = 300_000


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="segassist",
        description="SegAssist: a model proposes a label for every pixel, you correct it, your corrections "
                    "fine-tune the model. Opens FOLDER (a folder of images) as a project.")
    p.add_argument("folder", nargs="?", type=Path,
                   help="a folder of images; segassist.json, labels/ and models/ are created beside them")
    p.add_argument("--model", type=Path, help="a model file (.safetensors) to propose labels with")
    p.add_argument("--sample", action="store_true",
                   help=f"open the bundled sample project, generated on first use into FOLDER "
                        f"(default ./{DEFAULT_SAMPLE})")
    p.add_argument("--screenshot", type=Path, metavar="PNG",
                   help="render the main window after loading (and after segmenting the first image when a model "
                        "is set) to PNG, then exit")
    p.add_argument("--image", metavar="NAME", help="the image to open first (file name in FOLDER)")
    p.add_argument("--size", metavar="WxH", help="window size (default 1440x900, or the screen where smaller)")
    return p


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"segassist: --size must look like 1440x900, got {text!r}") from None
    if w < 200 or h < 200:
        raise SystemExit(f"segassist: --size {text} is too small")
    return w, h


def ensure_sample(folder: Path) -> Path:
    """The sample project in `folder`, generated there (deterministically) the first time."""
    folder = Path(folder)
    if (folder / "segassist.json").exists():
        return folder
    from resources.sample_project import make_sample_project

    print(f"segassist: writing the sample project into {folder}/ (first run)")
    return Path(make_sample_project(folder))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    size = parse_size(args.size) if args.size else None
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    folder = args.folder
    if args.sample:
        folder = ensure_sample(folder or DEFAULT_SAMPLE)
    elif folder is not None and not folder.is_dir():
        print(f"segassist: {folder}: not a folder", file=sys.stderr)
        return 2
    if args.model is not None and not args.model.is_file():
        print(f"segassist: {args.model}: no such model file", file=sys.stderr)
        return 2

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("SegAssist")
    app.setOrganizationName("SegAssist")
    window, shot = open_window(folder, args.model, size, args.screenshot, on_done=app.quit, image=args.image)
    _install_excepthook(window)
    code = app.exec()
    code = 1 if shot is not None and shot.error is not None else code
    if window.models.stuck:
        # A model call that never returns (a forward pass cannot be interrupted) would keep the process
        # alive forever: the labels are saved by now, so leave without waiting for it.
        logging.getLogger(__name__).warning("a model job did not finish; exiting without waiting for it")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def open_window(folder: Path | None, model: Path | None, size: tuple[int, int] | None = None,
                screenshot: Path | None = None, on_done=None, image: str | None = None):
    """The themed main window on `folder` with `model`; with `screenshot`, a `Screenshot` that saves it
    once it is ready and then calls `on_done`. Returns (window, screenshot or None)."""
    from PySide6.QtWidgets import QApplication

    from app.window.main_window import MainWindow
    from app.window.theme import apply_theme

    apply_theme(QApplication.instance())
    window = MainWindow()  # (sized to fit the screen)
    if size is not None:
        window.resize(*size)
    window.show()
    if folder is not None and window.open_project(folder) and image is not None:
        names = [e.name for e in window.project.images]
        if image in names:
            window.open_image(names.index(image))
        else:
            print(f"segassist: {folder}: no image named {image}", file=sys.stderr)
    if model is not None:
        window.open_model(model)
    shot = None
    if screenshot is not None:
        shot = Screenshot(window, screenshot, wait_for_model=model is not None or window.models.busy, on_done=on_done)
        shot.start()
    return window, shot


class Screenshot:
    """Waits until the window has something to show (the model loaded, the first image segmented),
    then saves `window.grab()` to `path` and quits."""

    def __init__(self, window, path: Path, wait_for_model: bool, on_done=None):
        from PySide6.QtCore import QTimer

        self.window, self.path, self.wait_for_model = window, Path(path), wait_for_model
        self.on_done = on_done
        self.error: str | None = None
        self.done = False
        self._guard = QTimer()
        self._guard.setSingleShot(True)
        self._guard.timeout.connect(lambda: self._fail("timed out waiting for the model"))

    def start(self) -> None:
        from PySide6.QtCore import QTimer

        w = self.window
        self._guard.start(SCREENSHOT_TIMEOUT_MS)
        if not self.wait_for_model:
            QTimer.singleShot(300, self.capture)
            return
        w.models.failed.connect(lambda msg: self._fail(msg))
        if w.models.active is not None and not w.models.busy:
            QTimer.singleShot(0, self._segment)
        else:
            w.models.changed.connect(lambda _: QTimer.singleShot(0, self._segment))

    def _segment(self) -> None:
        from PySide6.QtCore import QTimer

        w = self.window
        if self.done:
            return
        if w.editor.doc is None or w.models.active is None or w.model_flow.class_table() is None:
            QTimer.singleShot(300, self.capture)  # nothing to segment, or the question about classes is the view
            return
        w.predictionsDone.connect(lambda: QTimer.singleShot(300, self.capture))
        w.segmenting.current()

    def _fail(self, why: str) -> None:
        self.error = why
        print(f"segassist: screenshot: {why}", file=sys.stderr)
        self.capture()

    def capture(self) -> None:
        from PySide6.QtWidgets import QApplication

        if self.done:
            return
        self.done = True
        self._guard.stop()
        QApplication.processEvents()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.window.grab().save(str(self.path)):
            self.error = f"{self.path}: could not write the PNG"
            print(f"segassist: {self.error}", file=sys.stderr)
        else:
            print(f"segassist: wrote {self.path}")
        if self.on_done is not None:
            self.on_done()


def _install_excepthook(window) -> None:
    """An exception in a slot is logged and shown in the status bar instead of ending the app.

    A hook installed before (a test harness's) still hears of it."""
    log = logging.getLogger("segassist")
    previous = sys.excepthook

    def hook(kind, value, tb):
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, value, tb)))
        with contextlib.suppress(Exception):  # the window may be gone
            window.say(f"Unexpected error: {value}", 15000)
        if previous is not sys.__excepthook__:
            previous(kind, value, tb)

    sys.excepthook = hook
