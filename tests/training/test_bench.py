"""bench/train.py still runs (smallest setting; nothing timed is asserted)."""

from bench import train as bench


def test_speed_bench_runs(capsys, monkeypatch):
    monkeypatch.setitem(bench.SMALL_BACKBONES, "cnn", "test_resnet")
    bench.main(["speed", "--archs", "deeplabv3plus", "--backbones", "small", "--crop", "32", "--steps", "1",
                "--precisions", "fp32"])
    out = capsys.readouterr().out
    assert "deeplabv3plus" in out and "test_resnet" in out and "failed" not in out
