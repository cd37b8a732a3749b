"""The benchmark scripts still run (at their smallest settings; no timing is asserted)."""

from bench import cca, latency
from bench.memory import peak_memory


def test_peak_memory_sees_a_large_temporary():
    import torch

    def work():
        big = torch.ones(4 * 2**20)  # 16 MiB, freed before returning
        return float(big.sum())

    peak, result = peak_memory(work)
    assert result == 4 * 2**20
    assert 15 * 2**20 < peak < 64 * 2**20


def test_cca_bench_runs(capsys):
    cca.main(["--size", "9", "--channels", "16", "--runs", "1"])
    out = capsys.readouterr().out
    assert "criss-cross x2" in out and "non-local" in out and "fewer" in out


def test_latency_bench_runs(capsys, monkeypatch):
    monkeypatch.setitem(latency.SMALL_BACKBONES, "encnet", "test_resnet")
    latency.main(["--archs", "encnet", "--small-only", "--size", "64", "--runs", "1"])
    assert "test_resnet" in capsys.readouterr().out


def test_superpixels_bench_runs(capsys):
    from bench import superpixels

    superpixels.main(["--size", "256", "--max-pixels", "20000"])
    out = capsys.readouterr().out
    assert "precompute ms" in out and "remove islands" in out
