"""The enabled state as one function of what is true."""

from app.core.ui_state import Facts, enabled


def test_nothing_but_opening_without_a_project():
    assert not any(enabled(Facts()).values())


def test_a_document_without_a_model_can_still_ask_to_segment():
    state = enabled(Facts(project=True, document=True, can_undo=True))
    assert state["segment"] and state["segment_all"] and state["undo"] and state["reviewed"]
    assert not state["redo"] and not state["accept"] and not state["export_onnx"] and not state["cancel"]


def test_model_and_proposal_enable_their_commands():
    state = enabled(Facts(project=True, document=True, proposal=True, model=True, model_busy=True))
    assert state["accept"] and state["export_onnx"] and state["adopt_classes"] and state["cancel"]
