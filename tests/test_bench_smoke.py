"""The benchmark scripts run at their smallest settings and print figures that are consistent (timings are
not asserted; counts are checked against arithmetic done here)."""

import re

import pytest

from bench import cca, latency
from bench.memory import peak_memory


def table_rows(out: str) -> list[list[str]]:
    """The rows of the plain-text table in `out` (below the dashed rule), split into cells."""
    lines = out.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("--"))
    rows = []
    for line in lines[rule + 1:]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def number(cell: str) -> float:
    """A table cell as a number (figures of 1000 and more are printed with thousands separators)."""
    return float(cell.replace(",", ""))


def test_peak_memory_sees_a_large_temporary():
    """At least the temporary (no upper bound: the meter reads the whole process's allocations, and other
    threads may allocate meanwhile; `python -m bench.limits` prints what it measures)."""
    import torch

    def work():
        big = torch.ones(4 * 2**20)  # 16 MiB, freed before returning
        return float(big.sum())

    peak, result = peak_memory(work)
    assert result == 4 * 2**20
    assert peak >= 15 * 2**20


def test_cca_bench_counts_the_multiply_adds_of_both_blocks(capsys):
    cca.main(["--size", "9", "--channels", "16", "--runs", "1"])
    out = capsys.readouterr().out
    rows = {r[0]: r[1:] for r in table_rows(out)}
    n, c = 9 * 9, 16
    # non-local (C/2 inner): theta, phi, g and out 1x1 convs, then two N x N products
    non_local = 4 * n * c * (c // 2) + 2 * n * n * (c // 2)
    # one criss-cross pass: q and k (C/8), v (C) 1x1 convs, energies over H+W entries, aggregation; two passes
    criss_cross = 2 * (2 * n * c * (c // 8) + n * c * c + n * 18 * (c // 8) + n * 18 * c)
    assert float(rows["non-local"][0]) == pytest.approx(non_local / 1e9, rel=5e-3)
    assert float(rows["criss-cross x2"][0]) == pytest.approx(criss_cross / 1e9, rel=5e-3)
    fewer = float(re.search(r"criss-cross uses ([\d.]+)% fewer", out).group(1))
    assert fewer == pytest.approx(100 * (1 - criss_cross / non_local), abs=0.05)
    assert all(number(v) > 0 for r in rows.values() for v in r[1:])  # peak MiB and ms were measured


def test_latency_bench_reports_each_ratio_of_its_timings(capsys, monkeypatch):
    monkeypatch.setitem(latency.SMALL_BACKBONES, "encnet", "test_resnet")
    latency.main(["--archs", "encnet", "--small-only", "--size", "64", "--runs", "1"])
    (row,) = table_rows(capsys.readouterr().out)
    arch, backbone, fp32, backbone_fp32, ratio, *_ = row
    assert (arch, backbone) == ("encnet", "test_resnet")
    assert number(fp32) > 0 and number(backbone_fp32) > 0  # one timed run each: their order is noise
    assert number(ratio) == pytest.approx(number(fp32) / number(backbone_fp32), rel=0.02)


def test_superpixels_bench_runs(capsys):
    from bench import superpixels

    superpixels.main(["--size", "256", "--max-pixels", "20000"])
    out = capsys.readouterr().out
    assert "precompute ms" in out and "remove islands" in out


def test_limits_bench_reports_each_outcome(capsys):
    from bench import limits

    limits.main(["--quick", "--skip-window"])
    rows = {r[0]: r[1:] for r in table_rows(capsys.readouterr().out)}
    assert rows["ImageNet weights offline, not cached"][1] == "PretrainedUnavailable"
    assert rows["hub unreachable (closed port)"][1] == "PretrainedUnavailable"
    assert rows["download cancelled half-way (server holding)"][1] == "Cancelled"
    assert rows["fuzzed model files: slowest of 20"][1].endswith("refused")
    assert [k for k in rows if k.startswith("as_classes")] == [f"as_classes, {n:,} names" for n in (5000, 10000, 20000)]
    assert all(number(r[0]) >= 0 for r in rows.values())
