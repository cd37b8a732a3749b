"""Which commands are available: one function from what is true now to what is enabled.

The window applies the result to its actions and buttons; nothing else enables or disables them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Facts:
    """What the enabled state depends on."""

    project: bool = False
    document: bool = False
    can_undo: bool = False
    can_redo: bool = False
    proposal: bool = False
    model: bool = False
    model_busy: bool = False
    training: bool = False
    import_to_undo: bool = False
    read_only: bool = False  # nothing may be written to the project (open in another window)


def enabled(f: Facts) -> dict[str, bool]:
    """Action name -> enabled. Segmenting stays available without a model: it says what to do then.
    A read-only project can be looked at and exported; nothing that writes to it is enabled."""
    write = not f.read_only
    return {
        "undo": f.document and f.can_undo and write,
        "redo": f.document and f.can_redo and write,
        "accept": f.document and f.proposal and write,
        "segment": f.document and write,
        "segment_all": f.project and write,
        "cancel": f.model_busy,
        "export_onnx": f.model,
        "adopt_classes": f.model and f.project and write,
        "reviewed": f.document and write,
        "export_labels": f.project,
        "import_labels": f.project and write,
        "undo_import": f.project and f.import_to_undo and write,
        "new_model": f.project and write,
        "edit": f.document and write,  # the painting tools
        "train": f.project and write,
    }
