"""The layers, by the import-linter contracts in pyproject.toml (app -> training and labelformats -> engine; no Qt
in engine, training, labelformats, resources or app/core; no import cycle in engine), and the Qt-free packages
importing without loading Qt, through any third-party library too (which import-linter does not follow)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "qtpy", "shiboken6")


def test_import_linter_contracts_in_pyproject_are_kept(monkeypatch):
    from importlinter.cli import lint_imports

    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT))
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_headless_packages_import_without_loading_qt():
    core = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in sorted((ROOT / "app" / "core").rglob("*.py"))
            if p.stem != "__init__"]
    assert core
    modules = ["engine", "engine.models", "training", "labelformats", "resources.sample_project", *core]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"loaded = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
