"""The simulated person of `bench.simulated_person`: what it forgives, what polygons cost, and that it
fixes proposals through the app's gestures with the actions a person would spend."""

import json
import math
from collections import Counter

import cv2
import numpy as np
import pytest

from bench import simulated_person as sp

COLOURS = np.array([[40, 90, 40], [200, 60, 50], [60, 70, 210], [230, 210, 60]], np.uint8)


def picture(truth: np.ndarray, seed: int = 0) -> np.ndarray:
    """An RGB image of a label map: a colour per class and a little noise, so superpixels and GrabCut see it."""
    noise = np.random.default_rng(seed).integers(-12, 13, truth.shape + (3,))
    return np.clip(COLOURS[truth].astype(int) + noise, 0, 255).astype(np.uint8)


def scene() -> np.ndarray:
    truth = np.zeros((72, 96), np.uint8)
    truth[8:30, 10:34] = 1  # a box
    cv2.circle(truth, (65, 40), 14, 2, -1)  # a disk
    truth[56:64, :] = 3  # a strip across
    return truth


def test_forgiven_follows_the_tolerance_and_never_a_missed_object():
    truth = np.zeros((40, 40), np.uint8)
    truth[:, 20:] = 1
    truth[5:11, 5:11] = 2  # a 6 x 6 object
    proposal = np.zeros_like(truth)
    proposal[:, 21:] = 1  # the boundary one pixel right, the object missed
    wrong = proposal != truth
    assert wrong.sum() == 40 + 36
    assert not sp.forgiven(truth, proposal, 0).any()
    one = sp.forgiven(truth, proposal, 1)
    assert one[:, 20].all() and one.sum() == 40  # the shifted column, not the missed object
    assert np.array_equal(sp.remaining_error(truth, proposal, 2), truth == 2)
    truth[0, 0] = 255  # ignored in the truth: never wrong
    proposal[0, 0] = 3
    assert not sp.remaining_error(truth, proposal, 0)[0, 0]


def test_a_polygon_costs_a_vertex_per_10_px_of_outline():
    square = np.zeros((60, 60), bool)
    square[10:50, 10:50] = True
    (outline,) = sp.outlines(square)
    # through pixel edges, each corner cut by half a pixel's diagonal
    assert sp.outline_length(outline) == pytest.approx(4 * 39 + 4 * math.sqrt(0.5))
    assert sp.polygon_cost(outline) == 16
    assert sp.polygon_cost(sp.outlines(square[8:12, 8:12])[0]) == 3  # a 2 x 2 corner: the minimum
    line = np.zeros((5, 100), bool)
    line[2, 2:97] = True  # 95 px long, 1 px wide: both sides and the ends
    assert sp.polygon_cost(sp.outlines(line)[0]) == math.ceil((2 * 94 + 4 * math.sqrt(0.5)) / 10) == 20
    holed = square.copy()
    holed[20:40, 20:40] = False  # a hole is drawn over, not around: the same outline
    assert [sp.polygon_cost(k) for k in sp.outlines(holed)] == [16]


def test_labelling_a_known_square_by_polygons():
    truth = np.zeros((100, 100), np.uint8)
    truth[30:70, 30:70] = 1
    # the square: 16 vertices; the background: its outer outline, the image's border (4 * 99 + corners)
    assert sp.polygon_labelling(truth) == sp.HandCount(polygons=2, vertices=16 + 40)
    assert sp.polygon_labelling(truth, min_region=2000) == sp.HandCount(1, 40)  # the square is too small to count
    truth[:5] = 255  # not labelled: not drawn
    assert sp.polygon_labelling(truth).vertices == 16 + math.ceil((2 * 99 + 2 * 94 + 4 * math.sqrt(0.5)) / 10)


def test_polygons_only_by_hand_paint_the_truth_for_the_count_of_polygon_labelling():
    truth = np.zeros((60, 60), np.uint8)
    truth[10:50, 10:50] = 1
    done = sp.correct(picture(truth), truth, None, tolerance=0, min_region=1, allowed=("polygon",))
    assert np.array_equal(done.labels, truth)
    assert done.actions == Counter(polygon=24 + 16) and done.moves == Counter(polygon=2)
    assert done.total == sp.polygon_labelling(truth, min_region=1).vertices


def test_a_fill_fixes_a_wrong_blob_in_one_action():
    truth = scene()
    proposal = truth.copy()
    proposal[38:48, 40:50] = 3  # a wrong blob on the background
    done = sp.correct(picture(truth), truth, proposal)
    assert done.actions == Counter(accept=1, fill=1)
    assert done.log == [("fill", 1, 0, 100)]
    assert np.array_equal(done.labels, truth)


def test_a_right_proposal_costs_one_accept():
    truth = scene()
    done = sp.correct(picture(truth), truth, truth.copy())
    assert done.actions == Counter(accept=1) and np.array_equal(done.labels, truth)
    assert (done.pixel_accuracy, done.miou) == (1.0, 1.0)


def wrong_proposal(truth: np.ndarray) -> np.ndarray:
    proposal = truth.copy()
    proposal[8:30, 10:34] = 0  # the box missed
    proposal[truth == 2] = 0
    cv2.circle(proposal, (69, 43), 14, 2, -1)  # the disk moved 4 px right and 3 down
    proposal[56:64, 40:60] = 1  # part of the strip wrong
    proposal[2:6, 80:92] = 3  # a wrong sliver
    return proposal


def test_the_person_fixes_a_proposal_fully_when_it_can():
    truth = scene()
    proposal = wrong_proposal(truth)
    strict = sp.correct(picture(truth), truth, proposal, tolerance=0, min_region=1)
    assert (strict.remaining_px, strict.given_up) == (0, 0)
    assert np.array_equal(strict.labels, truth)  # no tolerance, no minimum: exactly the truth
    assert strict.actions["accept"] == 1 and strict.total == sum(cost for _, cost, _, _ in strict.log) + 1
    tolerant = sp.correct(picture(truth), truth, proposal)
    left = sp.remaining_error(truth, tolerant.labels, sp.TOLERANCE)
    assert sp.error_regions(truth, left, sp.MIN_REGION)[1] == []  # nothing of 25 px or more left to draw
    assert tolerant.total <= strict.total
    # correcting costs less than labelling by hand, either way
    by_tools = sp.correct(picture(truth), truth, None)
    assert tolerant.total < by_tools.total <= sp.polygon_labelling(truth).vertices


def test_the_person_is_deterministic():
    truth = scene()
    image, proposal = picture(truth, 3), wrong_proposal(truth)
    for start in (None, proposal):
        a = sp.correct(image, truth, start)
        b = sp.correct(image, truth, start)
        assert a.log == b.log and a.actions == b.actions
        assert np.array_equal(a.labels, b.labels)


def test_synthetic_proposals_remove_small_objects_shift_and_add_blobs():
    truth = scene()
    truth[2:6, 2:6] = 3  # a 16 px object
    truth[0, 50] = 255
    p = sp.synthetic_proposal(truth, 0, shift=2, small=20, blobs=0, num_classes=4)
    assert p.dtype == np.uint8 and (p != 255).all()
    assert np.array_equal(p[2 + 8:2 + 30, 2 + 10:2 + 34], truth[8:30, 10:34])  # moved 2 px right and down
    assert (p[4:8, 4:8] == 0).all()  # the small object is gone
    assert np.array_equal(sp.synthetic_proposal(truth, 5), sp.synthetic_proposal(truth, 5))
    assert not np.array_equal(sp.synthetic_proposal(truth, 5), sp.synthetic_proposal(truth, 6))


def test_annotator_columns_count_by_hand_before_a_model_and_assisted_after():
    truth = scene()
    image = picture(truth)
    first = sp.annotator_columns(image, truth, None)
    assert first["actions"] == first["manual_tool_actions"] > 0
    assert first["manual_polygon_actions"] == sp.polygon_labelling(truth).vertices
    later = sp.annotator_columns(image, truth, wrong_proposal(truth))
    assert later["manual_tool_actions"] == first["manual_tool_actions"]
    assert json.loads(later["actions_by_tool"])["accept"] == 1
    assert sum(json.loads(later["actions_by_tool"]).values()) == later["actions"] < first["actions"]
    total = sp.annotator_summary([first, later])
    assert total["actions"] == first["actions"] + later["actions"]
    assert total["R_actions_vs_tools"] == pytest.approx(total["actions"] / (2 * first["manual_tool_actions"]))


def untrained_model(cfg, cwd):
    """The loop's trainer, in-process and without training: a tiny random model (a proposal to correct)."""
    import torch

    import engine
    from bench.annotator import QUICK_OPTIONS
    from training.events import DoneEvent

    torch.manual_seed(0)
    model = engine.create_model("deeplabv3plus", len(cfg.classes), backbone="test_resnet", **QUICK_OPTIONS)
    engine.save_model(cfg.out, model, classes=cfg.classes)
    return DoneEvent(iteration=0, model_path=str(cfg.out), best_path=None, best_miou=None, last_miou=None,
                     wall_time_s=0.0), None


def test_the_annotator_adds_the_persons_actions_per_image(tmp_path, capsys):
    from bench import annotator, annotator_table

    project, sources, classes = annotator.sample_sources(tmp_path / "project", 4, 64, 0)
    args = annotator.build_parser().parse_args(["--sample", "--person", "tools"])
    result = annotator.simulate(project, sources, annotator.TrainingChoice(backbone="test_resnet"),
                                retrain_every=2, trainer=untrained_model, person=annotator._person_hook(args),
                                report=lambda line: None)
    rows = [r.person for r in result.rows]
    assert [r.model for r in result.rows] == ["-", "-", "deeplabv3plus-v1", "deeplabv3plus-v1"]
    for row, source in zip(rows, sources, strict=True):
        truth = source.read_truth(len(classes))
        assert row["manual_polygon_actions"] == sp.polygon_labelling(truth).vertices
        by_tool = json.loads(row["actions_by_tool"])
        assert sum(by_tool.values()) == row["actions"]
    assert [r["actions"] == r["manual_tool_actions"] for r in rows[:2]] == [True, True]  # by hand before a model
    assert [json.loads(r["actions_by_tool"]).get("accept") for r in rows] == [None, None, 1, 1]
    annotator.write_outputs(tmp_path / "out", result, {"order": "file", "strategy": "finetune"})
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    spent, polygons = sum(r["actions"] for r in rows), sum(r["manual_polygon_actions"] for r in rows)
    assert summary["person"]["R_actions_vs_polygons"] == pytest.approx(spent / polygons)
    assert any(line.startswith("assisted/manual actions:") for line in summary["summary"])
    annotator_table.main([str(tmp_path / "out")])
    row = capsys.readouterr().out.splitlines()[-1].split(" | ")
    assert row[-2] == f"{spent / polygons:.3f}"


def test_grabcut_alone_cuts_clear_shapes():
    truth = scene()
    tried, fixed = sp.grabcut_alone(picture(truth), truth)
    # distinct colours: every shape cut by its box; not the background, whose box holds the other shapes
    assert tried == 5 and fixed == 4
    tried, fixed = sp.grabcut_alone(np.full(truth.shape + (3,), 128, np.uint8), truth)
    assert tried == 5 and fixed == 0  # a flat grey image: nothing to cut by
