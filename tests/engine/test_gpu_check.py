"""`bench/gpu_check --device cpu --quick` (the GPU benchmark's smoke run): every architecture gets its row,
its figures come from the real paths (the predictor, the training loop), and the table is markdown."""

import os
import shutil
import stat
from pathlib import Path

import pytest
import torch

import engine
from bench import gpu_check
from engine.precision import resolve_device

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a busy two-core machine, two spinning threads are many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_quick_cpu_run_fills_a_row_per_architecture(capsys):
    rows = gpu_check.main(["--device", "cpu", "--quick", "--max-minutes", "60"])
    out = capsys.readouterr().out
    assert [r.arch for r in rows] == engine.list_architectures()
    for row in rows:
        assert row.notes == [], (row.arch, row.notes)
        assert row.backbone.startswith("test_") and row.kind == "test"
        assert set(row.infer) == {(size, p) for size in ("64x64", "96x192") for p in gpu_check.precisions(
            resolve_device("cpu"))}
        assert all(v > 0 for v in row.infer.values())
        crops, detail = row.train.split(" ", 1)
        assert float(crops) > 0 and detail.endswith("batch 2)")
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| architecture |"))
    assert lines[header + 1].startswith("|---|")
    assert len(lines[header + 2:header + 2 + len(rows)]) == len(rows)
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines[header + 2:header + 2 + len(rows)])


def test_the_onnx_column_runs_the_exported_file_in_onnxruntime(tiny_exported, monkeypatch):
    exported = []

    def export(model, path, **kwargs):  # the real export is tested in test_onnx_export.py
        exported.append(model.arch)
        return Path(shutil.copy(tiny_exported.onnx_file, path))

    monkeypatch.setattr(engine, "export_onnx", export)
    (row,) = gpu_check.main(["--device", "cpu", "--quick", "--archs", "ccnet", "--onnx", "--max-minutes", "60"])
    assert exported == ["ccnet"] and row.notes == [] and float(row.onnx) > 0


def test_the_wrapper_is_an_executable_script():
    wrapper = ROOT / "bench" / "gpu_check"
    assert wrapper.stat().st_mode & stat.S_IXUSR
    assert "-m bench.gpu_check" in wrapper.read_text() and os.access(wrapper, os.X_OK)
