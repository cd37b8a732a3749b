"""Several processes: torchrun with two CPU processes (gloo) trains one model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import engine

from .conftest import TINY_ARGS

ROOT = Path(__file__).resolve().parents[2]


def test_torchrun_with_two_cpu_processes_writes_one_model_that_loads(shapes, tmp_path):
    out = tmp_path / "m.safetensors"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "training", "--images", str(shapes[0]), "--labels", str(shapes[1]), "--val-images", str(shapes[0]),
           "--val-labels", str(shapes[1]), "--classes", "background,disk,box", *TINY_ARGS, "--crop", "32",
           "--batch", "2", "--iters", "4", "--checkpoint-interval", "2", "--device", "cpu", "--precision", "fp32",
           "--out", str(out), "--events", "-"]
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]  # rank 0 alone reports
    kinds = [e["event"] for e in events]
    assert kinds.count("start") == 1 and kinds.count("done") == 1 and kinds.count("checkpoint") == 1
    assert events[0]["world_size"] == 2
    # Validation is shared out among the processes and the confusion matrices summed: every labelled pixel once.
    validation = [e for e in events if e["event"] == "validation"][-1]
    labelled = sum(int(np.sum(engine.read_label(p) != 255)) for p in engine.list_images(shapes[1]))
    assert np.sum(validation["confusion"]) == labelled
    loaded = engine.load_model(out)
    assert loaded.meta["history"][-1]["world_size"] == 2 and loaded.meta["history"][-1]["iterations"] == 4
    assert loaded.model.num_classes == 3
