"""A failing or stuck test never hangs the suite: pytest runs `tests/app/stuck/cases.py` in a child process
(one pytest-xdist worker, as `make test` runs) and ends, each stuck test reported failed, the rest run.

The child pytest's own timeout (the subprocess timeout below) is the only clock: generous, far above the
few seconds these cases take, and far below the hang it guards against (a run that never ends)."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_failing_and_stuck_gui_tests_end_and_stop_their_training(tmp_path):
    pid_file = tmp_path / "training.pid"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen", "STUCK_PID_FILE": str(pid_file),
           "SEGASSIST_TEST_BACKSTOP_S": "2"}
    run = subprocess.run([sys.executable, "-m", "pytest", "tests/app/stuck/cases.py", "-p", "no:cacheprovider",
                          "-n", "1", "-rA", f"--basetemp={tmp_path / 'base'}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out[-4000:]
    assert re.search(r"=+ 3 failed, 1 passed in ", out), out[-4000:]  # no error at a teardown
    assert "FAILED tests/app/stuck/cases.py::test_fails_while_a_training_runs" in out
    assert "Failed: failing on purpose while the training runs" in out
    assert "FAILED tests/app/stuck/cases.py::test_a_question_no_one_answers" in out
    assert "Timeout (>3.0s) from pytest-timeout" in out
    assert "worker 'gw0' crashed while running 'tests/app/stuck/cases.py::test_a_wait_that_runs_no_python'" in out
    assert "PASSED tests/app/stuck/cases.py::test_after_the_stuck_ones" in out
    assert pid_file.read_text().isdigit()  # the training the first case left running (the last case: stopped)
