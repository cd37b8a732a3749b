"""bench.formats runs at its smallest settings (no timing asserted)."""

from bench import formats


def test_formats_bench_runs(capsys):
    formats.main(["--images", "2", "--size", "64x48", "--formats", "palette,yolo"])
    out = capsys.readouterr().out
    assert "palette    export       2" in out and "yolo       export       2" in out
