"""Stopping and resuming a run; the guard against non-finite losses."""

import itertools
import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import engine
from training import TrainingError, loop, train
from training.checkpoint import CheckpointError, load_checkpoint

from .conftest import TINY_ARGS, finite_state, tiny_config

ROOT = Path(__file__).resolve().parents[2]


def test_stopped_run_resumes_to_the_same_final_weights(shapes, tmp_path):
    """fp32, one process, fixed seeds: stop + resume gives bit-identical weights (dropout included, as the
    random states are restored and the data order is a function of seed and iteration)."""
    cfg = tiny_config(*shapes, tmp_path / "a.safetensors", iterations=10, checkpoint_interval=100)
    full = train(cfg)
    assert not cfg.checkpoint_dir.exists()  # removed after a finished run

    part_cfg = replace(cfg, out=tmp_path / "b.safetensors")
    calls, events = itertools.count(1), []
    part = train(part_cfg, on_event=events.append, should_stop=lambda: next(calls) >= 4)
    assert part.stopped and part.iterations == 4
    assert events[-1].kind == "done" and events[-1].stopped and events[-1].iteration == 4
    assert engine.load_model(part_cfg.out).meta["history"][-1]["stopped"] is True
    assert load_checkpoint(part_cfg.checkpoint_dir)["iteration"] == 4

    resumed = train(replace(part_cfg, resume=True))
    assert resumed.iterations == 10 and not resumed.stopped
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_another_run(shapes, tmp_path):
    cfg = tiny_config(*shapes, tmp_path / "a.safetensors", iterations=6)
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        train(replace(cfg, resume=True))
    train(cfg, should_stop=lambda: True)
    with pytest.raises(CheckpointError, match=r"different run.*batch_size: 2 then, 4 now"):
        train(replace(cfg, resume=True, batch_size=4))


def test_killed_process_resumes_from_its_last_checkpoint(shapes, tmp_path):
    out = tmp_path / "m.safetensors"
    cmd = [sys.executable, "-m", "training", "--images", str(shapes[0]), "--labels", str(shapes[1]),
           "--classes", "background,disk,box", *TINY_ARGS, "--crop", "32", "--batch", "2", "--iters", "60",
           "--checkpoint-interval", "4", "--precision", "fp32", "--device", "cpu", "--out", str(out),
           "--events", "-"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if json.loads(line)["event"] == "checkpoint":
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    saved = load_checkpoint(out.with_name(out.name + ".ckpt"))["iteration"]
    assert 4 <= saved < 60

    done = subprocess.run([*cmd, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["event"] == "start" and events[0]["start_iteration"] == saved
    assert events[-1]["event"] == "done" and events[-1]["iteration"] == 60
    assert engine.load_model(out).meta["history"][-1]["iterations"] == 60


def _poison(monkeypatch, bad_calls):
    real, calls = loop.segmentation_loss, itertools.count(1)

    def poisoned(outputs, labels):
        loss, terms = real(outputs, labels)
        return (loss * float("nan") if next(calls) in bad_calls else loss), terms

    monkeypatch.setattr(loop, "segmentation_loss", poisoned)


def test_persistent_nan_stops_cleanly_and_keeps_the_last_good_state(shapes, tmp_path, monkeypatch):
    _poison(monkeypatch, range(7, 1000))
    cfg = tiny_config(*shapes, tmp_path / "m.safetensors", iterations=30, checkpoint_interval=3,
                      val_images=shapes[0], val_labels=shapes[1], val_interval=2)
    events = []
    with pytest.raises(TrainingError, match="non-finite for 5 iterations in a row"):
        train(cfg, on_event=events.append)
    assert events[-1].kind == "error" and "diverged" in events[-1].message
    assert not cfg.out.exists()
    checkpoint = load_checkpoint(cfg.checkpoint_dir)
    assert checkpoint["iteration"] == 6  # written before the first bad step, never after
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())
    assert finite_state(engine.load_model(cfg.best_path).model)


def test_a_transient_nan_is_skipped_and_lowers_the_rate(shapes, tmp_path, monkeypatch):
    _poison(monkeypatch, {3})
    events = []
    result = train(tiny_config(*shapes, tmp_path / "m.safetensors", iterations=8, log_interval=1),
                   on_event=events.append)
    assert result.iterations == 8 and finite_state(result.model)
    lrs = {e.iteration: e.lr for e in events if e.kind == "step"}
    r = loop.recipe(tiny_config(*shapes, tmp_path / "x"), "deeplabv3plus")
    assert lrs[2] == pytest.approx(0.01 * loop.lr_factor(1, 8, r))
    assert lrs[4] == pytest.approx(0.01 * loop.lr_factor(3, 8, r) * 0.5)
