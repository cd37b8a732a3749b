"""The simulated annotator end to end (`--quick`: six tiny scenes, two real trainings in a child process)."""

import csv
import json

import cv2
import numpy as np
import pytest
import torch

from app.core.loop import adoption
from app.core.loop.adoption import judge
from app.core.loop.effort import effort, kept_labels
from app.core.storage.project import Project
from bench import annotator, rule_replay
from engine.images import read_label
from engine.predictor import FLIP_ONLY
from resources.sample_project import SAMPLE_CLASSES
from resources.synthetic import make_shapes
from training.events import DoneEvent

FLIP = {"tta": True, **FLIP_ONLY}  # the app's proposals (PROPOSAL_OPTIONS)


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


def test_the_same_proposals_are_also_counted_strictly(quick):
    tmp, result = quick
    rows = read_csv(tmp / "out" / "images.csv")
    for r in rows[:2]:  # no proposal: drawn by hand whatever the tolerance
        assert r["strict_boundary_px"] == r["boundary_px"] == r["manual_boundary_px"]
    strict = sum(int(r["strict_boundary_px"]) for r in rows) / sum(int(r["manual_boundary_px"]) for r in rows)
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    assert summary["ratio_strict"] == pytest.approx(strict) == pytest.approx(result.strict_ratio)
    assert f"with no tolerance (tolerance 0): assisted/manual {strict:.3f}" in "\n".join(summary["summary"])


def test_proposals_are_made_as_the_app_makes_them(tmp_path):
    from app.core.storage.predictions import PROPOSAL_OPTIONS

    assert PROPOSAL_OPTIONS["tta"] is True  # the Model panel's default, so the simulator's too
    assert annotator.build_parser().parse_args([]).tta is True
    assert annotator.build_parser().parse_args(["--no-tta"]).tta is False


def test_the_first_model_can_train_sooner_than_the_next(tmp_path):
    result = annotator.main(["--quick", "--first-after", "1", "--limit", "3", "--work", str(tmp_path / "work"),
                             "--threads", "1"])  # --quick trains every 2 images: here after the first only
    assert [t.after for t in result.trainings] == [1]
    assert [r.model for r in result.rows] == ["-", "deeplabv3plus-v1", "deeplabv3plus-v1"]
    with pytest.raises(SystemExit, match="--first-after 0"):
        annotator.main(["--quick", "--first-after", "0", "--work", str(tmp_path / "other")])


def test_the_runs_table_quotes_each_runs_ratio(quick, capsys):
    from bench import annotator_table

    tmp, result = quick
    annotator_table.main([str(tmp / "out")])
    row = capsys.readouterr().out.splitlines()[-1].split(" | ")
    assert row[1:4] == ["file", "finetune", "6"] and row[7] == f"{result.ratio:.3f}"
    annotator_table.main(["--blocks", "2", str(tmp / "out")])
    blocks = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "-" in line[:6]]
    assert [b.split(" | ")[1] for b in blocks] == ["none (by hand)", "deeplabv3plus-v1", current_version(tmp)]
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    hindsight, final = summary["hindsight"], summary["final_labels"]
    assert row[10:13] == ["2", f"{100 * final['pixel_accuracy']:.2f}% / {final['miou']:.3f}",
                          f"{hindsight['agreed']}/1 ({hindsight['lost_px']} px lost)"]
    annotator_table.main(["--trainings", str(tmp / "out")])
    lines = capsys.readouterr().out.splitlines()
    runs = read_csv(tmp / "out" / "trainings.csv")
    fine_tune = lines[-1].split(" | ")
    assert len(lines) == 4 and fine_tune[2] == "deeplabv3plus-v2" and fine_tune[6:8] == [runs[1]["adopted"]] * 2
    assert fine_tune[8:11] == [runs[1]["hindsight_new_px"], runs[1]["hindsight_parent_px"],
                               runs[1]["hindsight_manual_px"]]


def test_trainings_are_a_new_model_then_a_finetune_of_it(quick):
    tmp, result = quick
    runs = read_csv(tmp / "out" / "trainings.csv")
    assert [(r["after"], r["version"], r["mode"], r["parent"]) for r in runs] == [
        ("2", "deeplabv3plus-v1", "new", "-"), ("4", "deeplabv3plus-v2", "finetune", "deeplabv3plus-v1")]
    since = {r["image"] for r in read_csv(tmp / "out" / "images.csv")[2:4]}  # corrected since v1 (trained after 2)
    held_out = set(json.loads(runs[1]["val_names"]))  # the newest reviewed validate: not trained on, not in focus
    assert [r["focus"] for r in runs] == ["0", str(len(since - held_out))]
    assert all(float(r["wall_s"]) > 0 for r in runs)
    # the app's selection rule, on the per-image scores the run reported
    assert set(json.loads(runs[1]["image_errors"])) == set(json.loads(runs[1]["val_names"]))
    fine_tune = DoneEvent(iteration=1, model_path="v2", best_path=None, best_miou=None, last_miou=None,
                          wall_time_s=1.0, miou=float(runs[1]["miou"]), parent_miou=float(runs[1]["parent_miou"]),
                          val_names=json.loads(runs[1]["val_names"]), image_errors=json.loads(runs[1]["image_errors"]),
                          parent_image_errors=json.loads(runs[1]["parent_image_errors"]))
    assert [r["adopted"] for r in runs] == ["True", str(judge(fine_tune).adopt)]
    assert result.training_s == pytest.approx(sum(float(r["wall_s"]) for r in runs), abs=0.2)


def test_labels_went_through_the_project_as_the_apps(quick):
    tmp, _ = quick
    project = Project.open(tmp / "work" / "project")
    assert [e.status for e in project.images] == ["reviewed"] * 6
    truth = [lab for _, lab in make_shapes(6, 64, 0, classes=SAMPLE_CLASSES)]
    rows = read_csv(tmp / "out" / "images.csv")
    for entry, t, row in zip(project.images, truth, rows, strict=True):
        # the person kept the proposal where it was forgiven (2 px) and painted the truth elsewhere
        proposal = project.load_document(entry).proposal  # the cached proposal the person started from
        saved = read_label(project.label_path(entry))
        assert np.array_equal(saved, t if proposal is None else kept_labels(t, proposal, tolerance=2))
        assert int(row["final_wrong_px"]) == int((saved != t).sum()) == int(row["forgiven_px"])
    assert sum(int(r["forgiven_px"]) for r in rows) > 0
    assert [m.path.name for m in project.models] == ["deeplabv3plus-v1.safetensors", "deeplabv3plus-v2.safetensors"]
    assert project.models[1].parent == "deeplabv3plus-v1.safetensors"
    runs = read_csv(tmp / "out" / "trainings.csv")
    assert project.current_model == project.models[1 if runs[1]["adopted"] == "True" else 0].path


def test_the_final_labels_are_scored_against_the_truth(quick):
    tmp, result = quick
    truth = [lab for _, lab in make_shapes(6, 64, 0, classes=SAMPLE_CLASSES)]
    project = Project.open(tmp / "work" / "project")
    saved = [read_label(project.label_path(e)) for e in project.images]
    right = sum(int((s == t).sum()) for s, t in zip(saved, truth, strict=True))
    accuracy = right / sum(t.size for t in truth)
    ious = []
    for c in range(len(SAMPLE_CLASSES)):
        inter = sum(int(((s == c) & (t == c)).sum()) for s, t in zip(saved, truth, strict=True))
        union = sum(int(((s == c) | (t == c)).sum()) for s, t in zip(saved, truth, strict=True))
        if union:
            ious.append(inter / union)
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    assert summary["tolerance"] == 2
    assert summary["final_labels"]["pixel_accuracy"] == pytest.approx(accuracy) and accuracy < 1
    assert summary["final_labels"]["miou"] == pytest.approx(np.mean(ious))
    assert f"pixel accuracy {accuracy:.4f}, mIoU {np.mean(ious):.4f}" in summary["summary"][-2]


def test_each_fine_tune_is_judged_in_hindsight_on_the_next_images(quick):
    import engine
    from app.core.storage.predictions import project_labels

    tmp, result = quick
    project = Project.open(tmp / "work" / "project")
    runs = read_csv(tmp / "out" / "trainings.csv")
    rows = read_csv(tmp / "out" / "images.csv")
    assert runs[0]["agreed"] == "" and runs[0]["hindsight_images"] == "0"  # the first model replaces nothing
    run = runs[1]
    assert run["hindsight_images"] == "2"  # images 5 and 6, labelled after the fine-tune
    truth = [lab for _, lab in make_shapes(6, 64, 0, classes=SAMPLE_CLASSES)]
    cost = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the run's predictor (--threads 1): a tiny model's near ties fall the same way
    try:
        for version in ("deeplabv3plus-v1", "deeplabv3plus-v2"):
            predictor = engine.Predictor(project.folder / "models" / f"{version}.safetensors", device="cpu",
                                         precision="fp32", **FLIP)
            cost[version] = sum(
                effort(t, project_labels(predictor.predict(project.folder / r["image"]).labels, 4), min_region=25,
                       tolerance=2).boundary_px for r, t in zip(rows[4:], truth[4:], strict=True))
    finally:
        torch.set_num_threads(threads)
    assert int(run["hindsight_parent_px"]) == cost["deeplabv3plus-v1"]
    assert int(run["hindsight_new_px"]) == cost["deeplabv3plus-v2"]
    used = "deeplabv3plus-v2" if run["adopted"] == "True" else "deeplabv3plus-v1"
    assert cost[used] == sum(int(r["boundary_px"]) for r in rows[4:])  # the version in use met those images
    agreed = cost[used] <= min(cost.values())
    assert run["agreed"] == str(agreed) and int(run["lost_px"]) == cost[used] - min(cost.values())
    assert (f"selection agreed with hindsight: {int(agreed)}/1 (effort lost where it did not: {run['lost_px']} "
            "boundary px") in "\n".join(annotator.summary(result))
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    assert summary["hindsight"] == {"agreed": int(agreed), "judged": 1, "lost_px": int(run["lost_px"]),
                                    "manual_px": sum(int(r["manual_boundary_px"]) for r in rows[4:])}


def test_the_person_keeps_forgiven_pixels_and_strictly_none(tmp_path):
    from app.core.editing.document import LabelDocument

    truth = np.zeros((40, 40), np.uint8)
    truth[10:30, 10:30] = 1
    truth[0:2, :] = 255  # not labelled
    proposal = np.zeros_like(truth)
    proposal[12:32, 11:31] = 1  # the square moved: within 2 px
    proposal[35:39, 35:39] = 2  # an object that is not there
    kept = kept_labels(truth, proposal, tolerance=2)
    assert not np.array_equal(kept, truth) and (kept[35:39, 35:39] == 0).all() and (kept[:2] == 255).all()
    for tolerance, want in ((2, kept), (0, truth)):
        doc = LabelDocument(np.zeros((40, 40, 3), np.uint8), num_classes=3)
        doc.proposal = proposal
        annotator._label(doc, truth, tolerance)
        assert np.array_equal(doc.labels, want)


def test_a_negative_tolerance_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="--tolerance -1"):
        annotator.main(["--quick", "--tolerance", "-1", "--work", str(tmp_path)])


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
    from app.core.loop.training_plan import TrainingChoice, plan_training

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


def test_in_uncertain_order_both_versions_are_judged_on_images_neither_chose(tmp_path):
    result = annotator.main(["--quick", "--order", "uncertain", "--work", str(tmp_path / "work"), "--threads", "1"])
    project = Project.open(tmp_path / "work" / "project")
    fine_tune = result.trainings[1]
    labelled = [r.image for r in result.rows[:fine_tune.after]]
    window = [e.name for e in project.images if e.name not in labelled][:2]  # file order among the rest
    truth = dict(zip([e.name for e in project.images],
                     [lab for _, lab in make_shapes(6, 64, 0, classes=SAMPLE_CLASSES)], strict=True))
    import engine
    from app.core.storage.predictions import project_labels

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cost = {v: sum(effort(truth[n], project_labels(engine.Predictor(
            project.folder / "models" / f"{v}.safetensors", device="cpu", precision="fp32", **FLIP).predict(
            project.folder / n).labels, 4), min_region=25, tolerance=2).boundary_px for n in window)
            for v in ("deeplabv3plus-v1", "deeplabv3plus-v2")}
    finally:
        torch.set_num_threads(threads)
    assert (fine_tune.hindsight_images, fine_tune.hindsight_parent_px, fine_tune.hindsight_new_px) == (
        2, cost["deeplabv3plus-v1"], cost["deeplabv3plus-v2"])


def test_training_scores_versions_with_the_proposals_inference():
    from app.core.storage.predictions import PROPOSAL_OPTIONS
    from training import validate

    assert validate.PROPOSAL_FLIP is PROPOSAL_OPTIONS["tta"]
    assert PROPOSAL_OPTIONS["precision"] == validate.PROPOSAL_PRECISION


def test_the_rule_replays_on_the_recorded_trainings(quick, capsys):
    """`bench.rule_replay` reads what each training's validation and hindsight said and reproduces the
    recorded decision with the rule's own constants."""
    tmp, _ = quick
    runs = [r for r in read_csv(tmp / "out" / "trainings.csv") if r["agreed"]]
    records = list(rule_replay.read_run(tmp / "out"))
    assert [r.version for r in records] == [r["version"] for r in runs] and records
    assert [judge(r.done).adopt for r in records] == [r["adopted"] == "True" for r in runs]
    assert [r.lost(r.adopted) for r in records] == [int(r["lost_px"]) for r in runs]
    assert rule_replay.main([str(tmp / "out"), "--margin", f"{adoption.MARGIN:g}", "--margin", "9"]) == 0
    out = capsys.readouterr().out
    agreed = sum(r["agreed"] == "True" for r in runs)
    assert f"| recorded decisions | {agreed}/{len(runs)} | {sum(int(r['lost_px']) for r in runs)} |" in out
    own = f"margin {adoption.MARGIN:g}, z {adoption.Z:g}, prior sd {adoption.PRIOR_SD:g} x {adoption.PRIOR_IMAGES}"
    assert f"| {own} | {agreed}/{len(runs)} |" in out
    wide = next(line for line in out.splitlines() if line.startswith("| margin 9,")).split("|")
    assert wide[5].strip() == f"{len(runs)}/{len(runs)}"  # a margin no version exceeds adopts every one


def test_the_rule_replay_names_a_folder_that_is_no_run(tmp_path):
    with pytest.raises(SystemExit, match="trainings.csv"):
        rule_replay.main([str(tmp_path)])
