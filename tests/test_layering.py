"""engine/, training/ and labelformats/ run headless: no Qt there, by source and at import."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "qtpy", "shiboken6")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_engine_and_training_sources_import_no_qt():
    offenders = []
    for package in ("engine", "training", "labelformats"):
        for path in sorted((ROOT / package).rglob("*.py")):
            qt = {m for m in imported_modules(path) if m.split(".")[0] in QT_MODULES}
            if qt:
                offenders.append(f"{path.relative_to(ROOT)}: {sorted(qt)}")
    assert not offenders


def test_engine_and_training_import_without_loading_qt():
    code = (
        "import sys, engine, training, engine.models, labelformats\n"
        f"loaded = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_dependencies_point_one_way():
    """engine never imports training or app; training never imports app; labelformats only engine."""
    for package, forbidden in (("engine", ("training", "app", "labelformats")), ("training", ("app",)),
                               ("labelformats", ("app", "training"))):
        for path in (ROOT / package).rglob("*.py"):
            bad = {m for m in imported_modules(path) if m.split(".")[0] in forbidden}
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_import_linter_contracts_in_pyproject_are_kept(monkeypatch):
    """pyproject.toml's import-linter contracts: app -> training -> engine, no Qt in engine, training, app.core."""
    from importlinter.cli import lint_imports

    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT))
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0
