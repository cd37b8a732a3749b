"""bench/ui.py still runs (its smallest setting; no timing is asserted)."""

from bench import ui


def test_ui_bench_runs(capsys, qapp):
    ui.main(["--sizes", "300", "--moves", "3", "--images", "2", "--switch-size", "64x48"])
    out = capsys.readouterr().out
    assert "300 x 300" in out and "Image switch (2 JPEG images of 64 x 48" in out
