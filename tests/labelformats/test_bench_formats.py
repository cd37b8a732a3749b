"""bench.formats runs at its smallest settings (no timing asserted)."""

from bench import formats


def test_formats_bench_runs(capsys):
    formats.main(["--images", "2", "--size", "64x48", "--formats", "palette,yolo"])
    out = capsys.readouterr().out
    assert "palette    export       2" in out and "yolo       export       2" in out


def test_round_trip_table_runs_and_lossless_rows_are_identical(capsys):
    formats.main(["--round-trips", "--images", "2", "--size", "64x48"])
    lines = capsys.readouterr().out.splitlines()[2:]
    rows = [(line[:19].strip(), *line[19:].rsplit(maxsplit=4)) for line in lines]
    lossless = [r for r in rows if r[0] in ("index", "palette", "rgb", "voc", "cityscapes", "coco", "labelme",
                                            "datumaro")]
    assert len(lossless) == 7 * 2 + 5  # both directions of 7 formats, and 5 files of other tools' writers
    assert all(images == identical and top == "0" for _, _, images, identical, _, top in lossless), lines
    polygons = [r for r in rows if r[0].endswith(" 0")]  # tolerance 0: only the unlabelled hole is lost
    assert len(polygons) == 5 and all(0 < int(top) <= 3 for *_, top in polygons), lines
