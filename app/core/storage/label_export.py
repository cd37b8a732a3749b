"""Label export: every saved label map as a palette PNG coloured by the project's classes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.images import read_label, write_label


def export_plan(project, folder: str | Path, documents: dict | None = None) -> list[tuple[object, Path]]:
    """(label file, exported file) for every readable image that has labels; an image with a document in
    `documents` (by stem: edits not saved yet) exports a copy of the document's labels instead."""
    folder = Path(folder)
    docs = documents or {}
    return [(docs[e.stem].labels.copy() if e.stem in docs else project.label_path(e), folder / f"{e.stem}.png")
            for e in project.images if e.error is None and (e.stem in docs or project.label_path(e).exists())]


def export_labels(pairs: list[tuple[Path, Path]], classes, *, check: Callable[[], None] = lambda: None,
                  progress: Callable[[int, int], None] = lambda done, total: None) -> int:
    """Write each pair's labels as a palette PNG (atomically); `check()` may raise to cancel. Returns the count."""
    classes = list(classes)
    for i, (src, dst) in enumerate(pairs):
        check()
        write_label(dst, read_label(src) if isinstance(src, str | Path) else src, classes)
        progress(i + 1, len(pairs))
    return len(pairs)
