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


def enabled(f: Facts) -> dict[str, bool]:
    """Action name -> enabled. Segmenting stays available without a model: it says what to do then."""
    return {
        "undo": f.document and f.can_undo,
        "redo": f.document and f.can_redo,
        "accept": f.document and f.proposal,
        "segment": f.document,
        "segment_all": f.project,
        "cancel": f.model_busy,
        "export_onnx": f.model,
        "adopt_classes": f.model and f.project,
        "reviewed": f.document,
        "export_labels": f.project,
        "import_labels": f.project,
        "undo_import": f.project and f.import_to_undo,
        "new_model": f.project,
    }
