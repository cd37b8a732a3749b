"""The training child process without Qt: its command, its environment, its output read back, a run waited for."""

import os
import sys
from pathlib import Path

from training import child
from training.config import TrainConfig
from training.events import DoneEvent, ErrorEvent, StepEvent

FAKE = Path(__file__).parents[1] / "app" / "fake_training.py"


def config(tmp_path) -> TrainConfig:
    return TrainConfig(images=tmp_path, labels=tmp_path / "labels", out=tmp_path / "m.safetensors",
                       classes=("a", "b"), arch="ccnet", iterations=4)


def test_the_command_is_the_config_and_json_events(tmp_path):
    cfg = config(tmp_path)
    cmd = child.command(cfg)
    assert cmd[:3] == [sys.executable, "-m", "training"] and cmd[-2:] == ["--events", "-"]
    assert TrainConfig.from_args(cmd[3:-2]) == cfg
    assert child.command(cfg, ["python", "stand-in.py"])[:2] == ["python", "stand-in.py"]


def test_the_child_imports_this_checkout_first():
    env = child.environment({"PYTHONPATH": "/elsewhere", "HOME": "/h"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(child.REPO_ROOT), "/elsewhere"]
    assert env["PYTHONUNBUFFERED"] == "1" and env["HOME"] == "/h"
    assert child.environment({})["PYTHONPATH"] == str(child.REPO_ROOT)


def test_events_split_over_chunks_come_back_in_order_with_the_log_lines():
    out = child.ChildOutput()
    step = StepEvent(iteration=1, iterations=2, loss=0.5, lr=0.1, elapsed_s=1.0, eta_s=1.0, images_per_s=2.0)
    line = step.to_json().encode()
    assert out.stdout(line[:10]) == []  # half a line is nothing yet
    assert out.stdout(line[10:] + b"\nnot an event\n\n") == [step, "not an event"]
    assert out.events == [step] and out.done is None
    done = DoneEvent(iteration=2, model_path="m", best_path=None, best_miou=None, last_miou=None, wall_time_s=1.0)
    assert out.stdout(done.to_json().encode(), final=True) == [done]  # the last line needs no newline
    assert out.done == done and out.error is None


def test_an_unknown_event_kind_is_a_log_line_that_says_so():
    out = child.ChildOutput()
    (item,) = out.stdout(b'{"event": "epoch", "iteration": 0}\n')
    assert isinstance(item, str) and item.startswith('{"event": "epoch"') and "not understood" in item
    assert out.events == []


def test_why_a_child_wrote_no_model():
    out = child.ChildOutput()
    assert out.stderr(b"warming up\nTraceback: something") == ["warming up"]
    assert out.stderr(b" broke\n") == ["Traceback: something broke"]
    assert out.failure(3) == "the training process exited with code 3:\nwarming up\nTraceback: something broke"
    assert out.failure(-9, crashed=True).startswith("the training process was killed")
    assert out.failure(-15, crashed=True, stop_requested=True).startswith("training was stopped")
    assert child.ChildOutput().failure(0) == "the training process ended without reporting a model"
    out.stdout(ErrorEvent("labels/b.png: not a readable label image").to_json().encode() + b"\n")
    assert out.failure(2) == "labels/b.png: not a readable label image"  # its own words, without the stderr


def test_a_run_waited_for_reports_done_or_why_not(tmp_path):
    cfg = config(tmp_path)
    log = tmp_path / "stderr.log"
    with open(log, "w", encoding="utf-8") as err:
        done, why = child.run(cfg, cwd=tmp_path, program=[sys.executable, str(FAKE), "ok"], stderr=err)
    assert why is None and isinstance(done, DoneEvent) and done.model_path == str(cfg.out)
    assert "warming up" in log.read_text()
    done, why = child.run(cfg, cwd=tmp_path, program=[sys.executable, str(FAKE), "error"])
    assert done is None and why == "labels/b.png: not a readable label image"
    done, why = child.run(cfg, cwd=tmp_path, program=[sys.executable, str(FAKE), "crash"])
    assert done is None and why == "the training process exited with code 3"
