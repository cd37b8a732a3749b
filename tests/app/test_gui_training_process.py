"""The training runner against a child that prints the documented JSON lines (and one that crashes)."""

import sys
from pathlib import Path

import pytest

from app.training_process import TrainingProcess, TrainingSettings

FAKE = Path(__file__).with_name("fake_training.py")


def run_fake(qtbot, mode, tmp_path, stop_after_steps=None):
    proc = TrainingProcess([mode, str(tmp_path / "m.safetensors")], program=[sys.executable, str(FAKE)])
    events, logs, outcome = [], [], {}
    proc.event.connect(events.append)
    proc.log.connect(logs.append)
    proc.succeeded.connect(lambda done: outcome.setdefault("done", done))
    proc.failed.connect(lambda why: outcome.setdefault("failed", why))
    if stop_after_steps:
        def stop_at(e):
            if e["event"] == "step" and e["iteration"] == stop_after_steps:
                proc.stop()

        proc.event.connect(stop_at)
    with qtbot.waitSignal(proc.finished, timeout=20000):
        proc.start()
    return proc, events, logs, outcome


def test_events_are_parsed_in_order_and_done_reported(qtbot, tmp_path):
    proc, events, logs, outcome = run_fake(qtbot, "ok", tmp_path)
    kinds = [e["event"] for e in events]
    assert kinds == ["start", "validation"] + ["step"] * 4 + ["validation", "checkpoint", "done"]
    assert [e["iteration"] for e in events if e["event"] == "step"] == [1, 2, 3, 4]
    assert outcome == {"done": events[-1]}
    assert outcome["done"]["model_path"].endswith("m.safetensors")
    assert "this line is not an event" in logs and "warming up" in logs


def test_error_event_fails_with_its_message(qtbot, tmp_path):
    _, events, _, outcome = run_fake(qtbot, "error", tmp_path)
    assert "done" not in outcome
    assert outcome["failed"] == "labels/b.png: not a readable label image"


def test_crash_without_done_fails_and_names_the_exit(qtbot, tmp_path):
    _, events, logs, outcome = run_fake(qtbot, "crash", tmp_path)
    assert "done" not in outcome
    assert "exited with code 3" in outcome["failed"] and "something broke" in outcome["failed"]
    assert [e["iteration"] for e in events if e["event"] == "step"] == [1, 2]  # the half line is not an event
    assert any(line.startswith('{"event": "step"') for line in logs)


def test_stop_sends_sigterm_and_the_child_still_reports_done(qtbot, tmp_path):
    proc, events, _, outcome = run_fake(qtbot, "slow", tmp_path, stop_after_steps=3)
    assert proc.stop_requested
    assert outcome["done"]["stopped"] is True
    assert outcome["done"]["iteration"] >= 3


def test_program_that_cannot_start_fails(qtbot, tmp_path):
    proc = TrainingProcess([], program=[str(tmp_path / "no-such-python")])
    with qtbot.waitSignal(proc.failed, timeout=10000) as blocker:
        proc.start()
    assert "could not start" in blocker.args[0]


@pytest.mark.parametrize("init", [None, Path("models/v1.safetensors")])
def test_settings_arguments(init):
    s = TrainingSettings(images=Path("p"), labels=Path("p/labels"), classes=Path("c.json"), out=Path("o"), init=init,
                         arch="ccnet", backbone="resnet18", crop=128, batch=2, iters=10)
    args = s.arguments()
    assert args[args.index("--events") + 1] == "-"
    assert args[args.index("--iters") + 1] == "10"
    if init is None:
        assert args[args.index("--arch") + 1] == "ccnet" and "--init" not in args
    else:
        assert args[args.index("--init") + 1] == str(init) and "--arch" not in args
