"""The `segassist` command line: argument checks, and `--screenshot` rendering a real window to a PNG."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from app.cli import build_parser, open_window, parse_size
from app.services.training_process import REPO_ROOT
from tests.app.gui_helpers import make_project, tiny_model_file


def run_app(*args, timeout=120):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "-m", "app", *map(str, args)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def in_process(qtbot):
    """What `segassist FOLDER [--model M] --screenshot PNG [--size WxH]` does, in this process and event loop."""

    def run(folder, *args):
        args = build_parser().parse_args([str(folder), *map(str, args)])
        size = parse_size(args.size) if args.size else None
        window, shot = open_window(args.folder, args.model, size, args.screenshot)
        qtbot.addWidget(window)
        qtbot.waitUntil(lambda: shot.done, timeout=120000)
        return 0 if shot.error is None else 1

    return run


def test_screenshot_writes_a_non_blank_png_of_the_segmented_window(tmp_path, in_process):
    folder = make_project(tmp_path / "project", n=3, size=(96, 128), labelled=1)
    model = tiny_model_file(tmp_path / "tiny.safetensors")
    out = tmp_path / "shot.png"
    assert in_process(folder, "--model", model, "--screenshot", out) == 0
    with Image.open(out) as im:
        assert im.size[0] >= 800 and im.size[1] >= 600
        pixels = np.asarray(im.convert("RGB"), np.float32)
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100
    assert (tmp_path / "project" / ".segassist" / "predictions" / "img00.npz").exists()  # it segmented


def test_screenshot_without_a_model(tmp_path, in_process):
    folder = make_project(tmp_path / "project", n=2)
    out = tmp_path / "shot.png"
    assert in_process(folder, "--screenshot", out, "--size", "1000x700") == 0
    with Image.open(out) as im:
        assert im.size == (1000, 700)


def test_bad_arguments_are_refused_with_a_clear_message(tmp_path):
    result = run_app(tmp_path / "missing", timeout=60)  # a real process: `python -m app` answers before loading Qt
    assert result.returncode == 2 and "missing: not a folder" in result.stderr
    with pytest.raises(SystemExit, match="--size"):
        parse_size("wide")
    args = build_parser().parse_args(["folder", "--model", "m.safetensors", "--sample", "--screenshot", "s.png"])
    assert args.sample and args.screenshot.name == "s.png"


def test_sample_is_generated_once_then_reused(tmp_path, monkeypatch):
    import resources.sample_project
    from app.cli import ensure_sample

    calls = []

    def fake_sample(folder):
        calls.append(folder)
        make_project(folder, n=2)
        (folder / "segassist.json").write_text("{}")
        return folder

    monkeypatch.setattr(resources.sample_project, "make_sample_project", fake_sample)
    folder = tmp_path / "sample"
    assert ensure_sample(folder) == folder and ensure_sample(folder) == folder
    assert calls == [folder]


def test_without_a_size_the_window_fits_the_screen(qtbot):
    from PySide6.QtGui import QGuiApplication

    window, _ = open_window(None, None)
    qtbot.addWidget(window)
    free = QGuiApplication.primaryScreen().availableGeometry()
    assert (window.width(), window.height()) == (min(1440, free.width()), min(900, free.height()))
