"""The training runner against a child that prints real `training.events` (and one that crashes)."""

import sys
from pathlib import Path

from app.services.training_process import TrainingProcess
from training.config import TrainConfig
from training.events import DoneEvent, StepEvent, ValidationEvent

FAKE = Path(__file__).parents[1] / "fake_training.py"


def config(tmp_path, iterations=4) -> TrainConfig:
    return TrainConfig(images=tmp_path, labels=tmp_path / "labels", out=tmp_path / "m.safetensors",
                       classes=("a", "b"), arch="ccnet", iterations=iterations)


def run_fake(qtbot, mode, tmp_path, stop_after_steps=None):
    proc = TrainingProcess(config(tmp_path), program=[sys.executable, str(FAKE), mode])
    events, logs, outcome = [], [], {}
    proc.event.connect(events.append)
    proc.log.connect(logs.append)
    proc.succeeded.connect(lambda done: outcome.setdefault("done", done))
    proc.failed.connect(lambda why: outcome.setdefault("failed", why))
    if stop_after_steps:
        def stop_at(e):
            if isinstance(e, StepEvent) and e.iteration == stop_after_steps:
                proc.stop()

        proc.event.connect(stop_at)
    with qtbot.waitSignal(proc.finished, timeout=20000):
        proc.start()
    return proc, events, logs, outcome


def test_events_are_parsed_into_dataclasses_in_order_and_done_reported(qtbot, tmp_path):
    proc, events, logs, outcome = run_fake(qtbot, "ok", tmp_path)
    kinds = [e.kind for e in events]
    assert kinds == ["start", "validation"] + ["step"] * 4 + ["validation", "checkpoint", "done"]
    assert events[0].arch == "ccnet" and events[0].classes == ["a", "b"]  # the config reached the child
    assert events[1] == ValidationEvent(iteration=0, miou=0.25, pixel_accuracy=0.5, per_class_iou=[0.2, 0.3],
                                        confusion=[])  # its extra key from a newer trainer ignored
    assert [e.iteration for e in events if isinstance(e, StepEvent)] == [1, 2, 3, 4]
    done = outcome["done"]
    assert isinstance(done, DoneEvent) and done is events[-1] and proc.done_event is done
    assert done.model_path == str(tmp_path / "m.safetensors") and done.last_miou == 0.75
    assert "this line is not an event" in logs and "warming up" in logs
    assert any(line.startswith('{"event": "epoch"') and "not understood" in line for line in logs)


def test_error_event_fails_with_its_message(qtbot, tmp_path):
    _, events, _, outcome = run_fake(qtbot, "error", tmp_path)
    assert "done" not in outcome
    assert outcome["failed"] == "labels/b.png: not a readable label image"


def test_crash_without_done_fails_and_names_the_exit(qtbot, tmp_path):
    _, events, logs, outcome = run_fake(qtbot, "crash", tmp_path)
    assert "done" not in outcome
    assert "exited with code 3" in outcome["failed"] and "something broke" in outcome["failed"]
    assert [e.iteration for e in events if isinstance(e, StepEvent)] == [1, 2]  # the half line is not an event
    assert any(line.startswith('{"event": "step"') for line in logs)


def test_stop_sends_sigterm_and_the_child_still_reports_done(qtbot, tmp_path):
    proc, events, _, outcome = run_fake(qtbot, "slow", tmp_path, stop_after_steps=3)
    assert proc.stop_requested
    assert outcome["done"].stopped is True
    assert outcome["done"].iteration >= 3


def test_program_that_cannot_start_fails(qtbot, tmp_path):
    proc = TrainingProcess(config(tmp_path), program=[str(tmp_path / "no-such-python")])
    with qtbot.waitSignal(proc.failed, timeout=10000) as blocker:
        proc.start()
    assert "could not start" in blocker.args[0]


def test_the_command_line_is_the_config_and_json_events():
    cfg = TrainConfig(images=Path("/p"), labels=Path("/p/labels"), out=Path("/p/o"), classes=("a",), iterations=10)
    proc = TrainingProcess(cfg)
    assert proc.command[:3] == [sys.executable, "-m", "training"]
    assert proc.command[-2:] == ["--events", "-"] and TrainConfig.from_args(proc.command[3:-2]) == cfg
