"""The simulated annotator end to end (`--quick`: six tiny scenes, two real trainings in a child process)."""

import csv
import json

import cv2
import numpy as np
import pytest

from app.core.project import Project
from bench import annotator
from engine.images import read_label
from resources.sample_project import SAMPLE_CLASSES
from resources.synthetic import make_shapes


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("annotator")
    result = annotator.main(["--quick", "--out", str(tmp / "out"), "--work", str(tmp / "work"), "--threads", "1"])
    return tmp, result


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def current_version(tmp) -> str:
    """The version in use after the second training: the fine-tune when it was adopted, else its parent."""
    runs = read_csv(tmp / "out" / "trainings.csv")
    return "deeplabv3plus-v2" if runs[1]["adopted"] == "True" else "deeplabv3plus-v1"


def test_the_table_adds_up(quick):
    tmp, result = quick
    rows = read_csv(tmp / "out" / "images.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [int(r["labelled_before"]) for r in rows] == [0, 1, 2, 3, 4, 5]
    for r in rows[:2]:  # before the first model the person labels by hand: assisted is manual
        assert r["model"] == "-" and r["boundary_px"] == r["manual_boundary_px"]
        assert r["regions"] == r["manual_regions"] and r["wrong_px"] == r["labelled_px"]
    # the last two images get the second training's version where the selection rule adopted it
    assert [r["model"] for r in rows[2:]] == ["deeplabv3plus-v1"] * 2 + [current_version(tmp)] * 2
    for r in rows[2:]:
        assert int(r["wrong_px"]) < int(r["labelled_px"])  # a trained model gets some pixels right
    truth = [lab for _, lab in make_shapes(6, 64, 0, classes=SAMPLE_CLASSES)]
    assert [int(r["labelled_px"]) for r in rows] == [t.size for t in truth]  # dense truth: every pixel
    ratio = sum(int(r["boundary_px"]) for r in rows) / sum(int(r["manual_boundary_px"]) for r in rows)
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    assert summary["ratio"] == pytest.approx(ratio) == pytest.approx(result.ratio)
    assert summary["summary"][-1] == f"assisted/manual effort: {ratio:.3f}"


def test_the_runs_table_quotes_each_runs_ratio(quick, capsys):
    from bench import annotator_table

    tmp, result = quick
    annotator_table.main([str(tmp / "out")])
    row = capsys.readouterr().out.splitlines()[-1].split(" | ")
    assert row[1:4] == ["file", "finetune", "6"] and row[7] == f"{result.ratio:.3f}"
    annotator_table.main(["--blocks", "2", str(tmp / "out")])
    blocks = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "-" in line[:6]]
    assert [b.split(" | ")[1] for b in blocks] == ["none (by hand)", "deeplabv3plus-v1", current_version(tmp)]


def test_trainings_are_a_new_model_then_a_finetune_of_it(quick):
    tmp, result = quick
    runs = read_csv(tmp / "out" / "trainings.csv")
    assert [(r["after"], r["version"], r["mode"], r["parent"]) for r in runs] == [
        ("2", "deeplabv3plus-v1", "new", "-"), ("4", "deeplabv3plus-v2", "finetune", "deeplabv3plus-v1")]
    assert [r["focus"] for r in runs] == ["0", "2"]  # the two images corrected since v1
    assert all(float(r["wall_s"]) > 0 for r in runs)
    # the app's selection rule: the new model is used; a fine-tune only when it does not score below its parent
    worse = [r["miou"] not in ("", "None") and r["parent_miou"] not in ("", "None")
             and float(r["miou"]) < float(r["parent_miou"]) for r in runs]
    assert [r["adopted"] for r in runs] == ["True", str(not worse[1])]
    assert result.training_s == pytest.approx(sum(float(r["wall_s"]) for r in runs), abs=0.2)


def test_labels_went_through_the_project_as_the_apps(quick):
    tmp, _ = quick
    project = Project.open(tmp / "work" / "project")
    assert [e.status for e in project.images] == ["reviewed"] * 6
    truth = [lab for _, lab in make_shapes(6, 64, 0, classes=SAMPLE_CLASSES)]
    for entry, t in zip(project.images, truth, strict=True):
        assert np.array_equal(read_label(project.label_path(entry)), t)
    assert [m.path.name for m in project.models] == ["deeplabv3plus-v1.safetensors", "deeplabv3plus-v2.safetensors"]
    assert project.models[1].parent == "deeplabv3plus-v1.safetensors"
    runs = read_csv(tmp / "out" / "trainings.csv")
    assert project.current_model == project.models[1 if runs[1]["adopted"] == "True" else 0].path


def test_the_plot_is_a_picture(quick):
    tmp, _ = quick
    image = cv2.imread(str(tmp / "out" / "effort.png"))
    assert image is not None and image.shape == (540, 960, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10  # lines and text, not a blank page


def test_uncertain_order_takes_the_highest_mean_entropy_first(tmp_path):
    from resources.sample_project import make_sample_project

    project = Project.open(make_sample_project(tmp_path / "p", n=4, size=32, dense=0, scribbled=0))
    entries = list(project.images)
    assert annotator._next(project, entries, "uncertain") is entries[0]  # no proposal yet: file order
    for e, h in zip(entries, (0.1, 0.7, None, 0.3), strict=True):
        e.mean_entropy = h
    assert annotator._next(project, entries, "uncertain") is entries[1]
    assert annotator._next(project, entries, "file") is entries[0]


def test_a_run_is_reused_only_when_its_settings_and_labels_are_the_same(tmp_path):
    from app.core.training_plan import TrainingChoice, plan_training

    def config(folder, label_value=1, iters=None):
        (folder / "labels").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / "labels" / "a.png"), np.full((4, 4), label_value, np.uint8))
        return plan_training(TrainingChoice(arch="deeplabv3plus", backbone="test_resnet", iters=iters),
                             images=folder, labels=folder / "labels", classes=SAMPLE_CLASSES,
                             out=folder / "models" / "v1.safetensors", labelled=1)

    key = annotator.reuse_key(config(tmp_path / "one"))
    assert annotator.reuse_key(config(tmp_path / "two")) == key  # another project folder, the same run
    assert annotator.reuse_key(config(tmp_path / "three", label_value=2)) != key  # other labels
    assert annotator.reuse_key(config(tmp_path / "four", iters=7)) != key  # other settings
