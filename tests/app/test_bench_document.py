"""bench/document.py still runs (at its smallest setting; no timing is asserted)."""

from bench import document


def test_document_bench_runs(capsys):
    rows = document.main(["--sizes", "300", "--moves", "5"])
    out = capsys.readouterr().out
    assert "brush r=8 per move" in out and "journal" in out
    assert all(size == 300 for _, size, _, _ in rows)
