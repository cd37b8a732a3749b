"""The enabled state as one function of what is true."""

from app.core.view.ui_state import Facts, enabled


def test_nothing_but_opening_without_a_project():
    assert not any(enabled(Facts()).values())


def test_a_document_without_a_model_can_still_ask_to_segment():
    state = enabled(Facts(project=True, document=True, can_undo=True))
    assert state["segment"] and state["segment_all"] and state["undo"] and state["reviewed"]
    assert not state["redo"] and not state["accept"] and not state["export_onnx"] and not state["cancel"]


def test_model_and_proposal_enable_their_commands():
    state = enabled(Facts(project=True, document=True, proposal=True, model=True, model_busy=True))
    assert state["accept"] and state["export_onnx"] and state["adopt_classes"] and state["cancel"]


def test_a_read_only_project_can_be_looked_at_and_exported_but_not_written():
    state = enabled(Facts(project=True, document=True, can_undo=True, proposal=True, model=True, read_only=True))
    assert state["export_labels"] and state["export_onnx"]
    for name in ("undo", "accept", "segment", "segment_all", "reviewed", "import_labels", "new_model", "edit",
                 "train", "adopt_classes"):
        assert not state[name], name
    writable = enabled(Facts(project=True, document=True, can_undo=True))
    assert writable["edit"] and writable["train"] and writable["undo"]
