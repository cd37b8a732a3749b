"""The bundled sample project: a loadable project, a few images labelled, the same bytes for the same seed."""

import numpy as np
import pytest

from app.core.storage.project import Project
from engine.images import IGNORE_INDEX, read_label
from resources.sample_project import SAMPLE_CLASSES, main, make_sample_project


def tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_sample_project_is_a_ready_project(tmp_path):
    folder = make_sample_project(tmp_path / "sample")
    project = Project.open(folder)
    assert [c.name for c in project.classes] == list(SAMPLE_CLASSES)
    assert len(project.images) == 36 and all(e.error is None for e in project.images)
    assert [e.status for e in project.images[:8]] == ["reviewed"] * 5 + ["edited"] * 2 + ["unlabelled"]
    assert len(project.labelled()) == 7
    dense = read_label(project.label_path(project.images[0]), len(SAMPLE_CLASSES))
    scribbles = read_label(project.label_path(project.images[5]), len(SAMPLE_CLASSES))
    assert dense.shape == (256, 256) and (dense != IGNORE_INDEX).all()
    assert 0.01 < (scribbles != IGNORE_INDEX).mean() < 0.5
    seen = np.unique(np.concatenate([read_label(project.label_path(e)).ravel() for e in project.labelled()]))
    assert set(seen) >= {0, 1, 2, 3}
    doc = project.load_document(project.images[0])
    np.testing.assert_array_equal(doc.labels, dense)


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    a = tree(make_sample_project(tmp_path / "a", seed=3, n=6, size=64, dense=2, scribbled=1))
    b = tree(make_sample_project(tmp_path / "b", seed=3, n=6, size=64, dense=2, scribbled=1))
    c = tree(make_sample_project(tmp_path / "c", seed=4, n=6, size=64, dense=2, scribbled=1))
    assert a == b
    assert a.keys() == c.keys() and a["scene_00.png"] != c["scene_00.png"]


def test_refuses_a_folder_that_holds_something(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        make_sample_project(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    main([str(tmp_path / "new"), "--seed", "1"])
    assert "sample project written" in capsys.readouterr().out
