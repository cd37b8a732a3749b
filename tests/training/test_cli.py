"""The command line: JSON-lines events on stdout, errors as events with an exit code, SIGTERM stops."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine
from training import event_from_dict
from training.cli import main

from .conftest import TINY_ARGS, label_file

ROOT = Path(__file__).resolve().parents[2]


def run_main(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_sigterm_stops_and_writes_the_model_json_only_on_stdout(shapes, tmp_path):
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps([{"name": "background", "color": [0, 0, 0]}, {"name": "disk", "color": [255, 0, 0]},
                                   {"name": "box", "color": [0, 0, 255]}]))
    out = tmp_path / "m.safetensors"
    cmd = [sys.executable, "-m", "training", "--images", str(shapes[0]), "--labels", str(shapes[1]),
           "--classes", str(classes), *TINY_ARGS, "--crop", "32", "--batch", "2", "--iters", "100000",
           "--val-fraction", "0.34", "--val-interval", "5", "--log-interval", "1", "--device", "cpu",
           "--precision", "fp32", "--out", str(out), "--events", "-"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))  # every stdout line is one JSON event
        if events[-1]["event"] == "validation":
            proc.send_signal(signal.SIGTERM)
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    start, done = events[0], events[-1]
    assert start == {**start, "event": "start", "iterations": 100000, "train_images": 4, "val_images": 2,
                     "skipped_images": 0, "arch": "deeplabv3plus", "backbone": "test_resnet",
                     "classes": ["background", "disk", "box"], "device": "cpu", "precision": "fp32"}
    step = next(e for e in events if e["event"] == "step")
    assert set(step) >= {"iteration", "iterations", "loss", "lr", "elapsed_s", "eta_s", "images_per_s"}
    validation = next(e for e in events if e["event"] == "validation")
    assert validation["iteration"] == 5 and len(validation["confusion"]) == 3
    assert done["event"] == "done" and done["stopped"] is True and 5 <= done["iteration"] < 100000
    final = [e for e in events if e["event"] == "validation"][-1]  # a stopped run scores the model it writes
    assert final["iteration"] == done["iteration"] and done["miou"] == done["last_miou"] == final["miou"]
    assert done["parent_miou"] is None and len(done["val_names"]) == 2  # (no --init: no parent)
    assert done["best_path"].endswith("m.best.safetensors")
    for e in events:
        event_from_dict(e)  # each maps back onto its dataclass
    loaded = engine.load_model(done["model_path"])
    assert loaded.classes[1].color == (255, 0, 0)
    assert loaded.meta["history"][-1]["iterations"] == done["iteration"]
    assert "stop requested" in err and "validation @ 5" in err


def test_bad_data_is_an_error_event_and_exit_code_1(shapes, tmp_path, capsys):
    label_file(shapes[1] / "002.png", np.full((48, 48), 9))
    argv = ["--images", str(shapes[0]), "--labels", str(shapes[1]), "--classes", "a,b,c", *TINY_ARGS,
            "--out", str(tmp_path / "m.safetensors"), "--events", "-", "--device", "cpu"]
    code, events, err = run_main(capsys, argv)
    assert code == 1 and [e["event"] for e in events] == ["error"]
    assert "002.png: label values 9 are not classes" in events[0]["message"]
    assert "error:" in err and not (tmp_path / "m.safetensors").exists()


def test_bad_arguments_are_an_error_event_and_exit_code_2(shapes, tmp_path, capsys):
    code, events, _ = run_main(capsys, ["--images", str(shapes[0]), "--events", "-"])
    assert code == 2 and events[0]["event"] == "error" and "required" in events[0]["message"]
    code, events, _ = run_main(capsys, ["--images", "i", "--labels", "l", "--out", "o", "--events", "-"])
    assert code == 2 and "give the classes" in events[0]["message"]
    code, events, _ = run_main(capsys, ["--images", "i", "--labels", "l", "--out", "o", "--classes", "a,a",
                                        "--events", "-"])
    assert code == 2 and "repeated: a" in events[0]["message"]
    bad = tmp_path / "classes.json"
    bad.write_text("{not json")
    code, events, _ = run_main(capsys, ["--images", "i", "--labels", "l", "--out", "o", "--classes", str(bad),
                                        "--events", "-"])
    assert code == 2 and "classes.json: cannot read the classes" in events[0]["message"]


def test_events_to_a_file_and_batch_one_refused(shapes, tmp_path, capsys):
    log = tmp_path / "events.jsonl"

    def argv(batch):
        return ["--images", str(shapes[0]), "--labels", str(shapes[1]), "--classes", "a,b,c", *TINY_ARGS,
                "--crop", "32", "--batch", str(batch), "--iters", "2", "--out", str(tmp_path / "m.safetensors"),
                "--events", str(log), "--device", "cpu", "--precision", "fp32"]

    code, stdout_events, _ = run_main(capsys, argv(batch=1))
    assert code == 1 and stdout_events == []
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert events[-1]["event"] == "error"
    assert "batch size 1" in events[-1]["message"] and "BatchNorm" in events[-1]["message"]
    code, _, _ = run_main(capsys, argv(batch=2))
    assert code == 0
    assert [json.loads(line)["event"] for line in log.read_text().splitlines()][-1] == "done"  # appended


def test_bf16_autocast_on_cpu(shapes, tmp_path, capsys):
    from engine.precision import cpu_supports_bf16

    if not cpu_supports_bf16():
        pytest.skip("this CPU has no native bf16 (AMX or AVX512-BF16), so 'auto' means fp32 here")
    argv = ["--images", str(shapes[0]), "--labels", str(shapes[1]), "--classes", "a,b,c", *TINY_ARGS,
            "--crop", "32", "--batch", "2", "--iters", "3", "--out", str(tmp_path / "m.safetensors"),
            "--events", "-", "--device", "cpu", "--precision", "auto"]
    code, events, _ = run_main(capsys, argv)
    assert code == 0 and events[0]["precision"] == "bf16" and events[-1]["event"] == "done"
    assert events[-1]["iteration"] == 3
