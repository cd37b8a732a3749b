"""app/core is the Qt-free part of the app: no Qt by source and at import."""

import subprocess
import sys
from pathlib import Path

from tests.test_layering import QT_MODULES, imported_modules

ROOT = Path(__file__).resolve().parents[2]


def test_core_sources_import_no_qt():
    sources = sorted((ROOT / "app" / "core").rglob("*.py"))
    assert sources
    offenders = {}
    for path in sources + [ROOT / "app" / "__init__.py", ROOT / "resources" / "sample_project.py"]:
        if path.exists():
            qt = {m for m in imported_modules(path) if m.split(".")[0] in QT_MODULES}
            if qt:
                offenders[str(path.relative_to(ROOT))] = sorted(qt)
    assert not offenders


def test_core_imports_without_loading_qt():
    modules = ["app.core." + p.stem for p in sorted((ROOT / "app" / "core").glob("*.py")) if p.stem != "__init__"]
    modules.append("resources.sample_project")
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"loaded = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
