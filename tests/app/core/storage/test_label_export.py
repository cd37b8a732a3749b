"""Label export without Qt: palette PNGs equal to the project's labels."""

import numpy as np

import engine
from app.core.storage.label_export import export_labels, export_plan
from app.core.storage.project import Project
from tests.app.gui_helpers import make_project


def test_every_label_file_is_exported_as_a_palette_png(tmp_path):
    project = Project.open(make_project(tmp_path / "p", n=3, labelled=2))
    pairs = export_plan(project, tmp_path / "out")
    assert [dst.name for _, dst in pairs] == ["img00.png", "img01.png"]
    seen = []
    assert export_labels(pairs, project.classes, progress=lambda d, t: seen.append((d, t))) == 2
    assert seen == [(1, 2), (2, 2)]
    for src, dst in pairs:
        np.testing.assert_array_equal(engine.read_label(dst), engine.read_label(src))
