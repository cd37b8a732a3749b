"""Imports into a project: journaled before the label is written, undone as a whole, proposals kept apart."""

from __future__ import annotations

import numpy as np
import pytest

from app.convert_cli import main
from app.core.storage.label_transfer import (
    TransferCancelled,
    export_entries,
    export_project,
    plan_import,
    run_import,
    undo_import,
)
from app.core.storage.predictions import read_prediction
from app.core.storage.project import PendingSave, Project
from engine.images import read_label
from labelformats import open_source


def _exported(make_project, tmp_path, fmt="palette"):
    src, maps = make_project("src")
    export_project(src, fmt, tmp_path / "out")
    return maps, open_source(fmt, tmp_path / "out", classes_file=tmp_path / "out" / "classes.json")


def test_a_crash_after_the_journal_loses_nothing(make_project, tmp_path, monkeypatch):
    maps, source = _exported(make_project, tmp_path)
    project, _ = make_project("dst", labelled=False)
    plan = plan_import(project, source)

    def crash(self):
        raise OSError("the process died here")

    monkeypatch.setattr(PendingSave, "write", crash)
    with pytest.raises(OSError):
        run_import(project, plan)
    monkeypatch.undo()
    reopened = Project.open(project.folder)
    entry = reopened.pending_recovery()[0]
    doc = reopened.load_document(entry)
    assert "restored 1 unsaved edit" in entry.note
    np.testing.assert_array_equal(doc.labels, maps[entry.stem])


def test_undo_takes_the_whole_import_back(make_project, tmp_path):
    maps, source = _exported(make_project, tmp_path)
    project, _ = make_project("dst", labelled=False)
    before = {s: np.full((48, 64), 255, np.uint8) for s in maps}
    before["img_1"][:10, :10] = 4  # one image was partly labelled before
    from engine.images import write_label

    write_label(project.label_path(project.entry("img_1")), before["img_1"], project.classes)
    project = Project.open(project.folder)
    result = run_import(project, plan_import(project, source))
    assert result.images == 3 and sorted(p.stem for p in result.record.glob("*.undo")) == sorted(maps)
    assert undo_import(project, result.record) == 3
    for stem in maps:
        path = project.label_path(project.entry(stem))
        if (before[stem] == 255).all():  # unlabelled before the import: no label file again
            assert not path.exists()
        else:
            np.testing.assert_array_equal(read_label(path), before[stem])
    assert not result.record.exists()


def test_keep_existing_fills_only_unlabelled_pixels(make_project, tmp_path):
    maps, source = _exported(make_project, tmp_path)
    project, _ = make_project("dst", labelled=False)
    from engine.images import write_label

    mine = np.full((48, 64), 255, np.uint8)
    mine[:, :5] = 4
    write_label(project.label_path(project.entry("img_0")), mine, project.classes)
    project = Project.open(project.folder)
    run_import(project, plan_import(project, source, keep_existing=True))
    got = read_label(project.label_path(project.entry("img_0")))
    expect = np.where(mine != 255, mine, maps["img_0"])
    np.testing.assert_array_equal(got, expect)


def test_predictions_of_another_tool_become_proposals_only(make_project, tmp_path):
    maps, source = _exported(make_project, tmp_path)
    project, _ = make_project("dst", labelled=False)
    result = run_import(project, plan_import(project, source, as_proposals=True))
    assert result.record is None
    for stem, labels in maps.items():
        entry = project.entry(stem)
        assert not project.label_path(entry).exists() and entry.status == "predicted"
        cached = read_prediction(project.prediction_path(entry))
        np.testing.assert_array_equal(cached.labels, labels)
        assert cached.model == "imported (palette)"
    assert [e.stem for e in export_entries(project, "labelled")] == []
    assert len(export_entries(project, "all")) == 3


def test_cancel_stops_between_images(make_project, tmp_path):
    maps, source = _exported(make_project, tmp_path)
    project, _ = make_project("dst", labelled=False)
    plan = plan_import(project, source)
    calls = iter([False, True])
    result = run_import(project, plan, should_stop=lambda: next(calls))
    assert result.cancelled and result.images == 1
    with pytest.raises(TransferCancelled):
        plan_import(project, source, should_stop=lambda: True)


def test_which_images_are_exported(make_project, tmp_path):
    project, _ = make_project("p")
    assert [e.stem for e in export_entries(project, "reviewed")] == ["img_0"]
    assert len(export_entries(project, "labelled")) == 3


def test_command_line(make_project, tmp_path, capsys):
    src, maps = make_project("src")
    dst, _ = make_project("dst", labelled=False)
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "coco-panoptic" in text and "camvid11" in text and "yolo" in text
    assert main(["export", str(src.folder), "coco", str(tmp_path / "c"), "--images", "reviewed"]) == 0
    coco = tmp_path / "c" / "annotations" / "instances_train.json"
    assert main(["import", str(dst.folder), "coco", str(coco), "--dry-run"]) == 0
    assert "nothing written" in capsys.readouterr().out
    assert not any(Project.open(dst.folder).labels_dir.iterdir())
    assert main(["import", str(dst.folder), "coco", str(coco), "--map", "sky=", "--map", "car=vehicle"]) == 0
    out = capsys.readouterr().out
    assert "added classes vehicle" in out and "undo with" in out
    got = read_label(dst.label_path(Project.open(dst.folder).entry("img_0")))
    labels = maps["img_0"]
    expect = np.where(labels == 4, 255, np.where(labels == 2, 5, labels))
    np.testing.assert_array_equal(got, expect)
    assert main(["import", str(dst.folder), "labelme", str(tmp_path / "nothing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
