"""The loop's record in segassist.json: the validation set rules, the time clock, the file round trip."""

import json
from dataclasses import asdict

import numpy as np
import pytest

from app.core.loop.effort import TOLERANCE
from app.core.loop.loop_record import (
    IDLE_CAP_S,
    NOT_MEASURABLE,
    ActivityClock,
    Correction,
    LoopRecord,
    correction,
    score_text,
)
from app.core.storage.project import Project, ProjectFileError
from tests.app.gui_helpers import make_project


def test_the_validation_set_needs_two_images_and_as_many_left_to_train_on():
    loop = LoopRecord()
    assert loop.update_validation(["a.png"], ["a.png", "b.png"]) == []  # one reviewed image: no set yet
    assert loop.update_validation(["a.png", "b.png"], ["a.png", "b.png"]) == []  # nothing would be left to train
    # 3 labelled: 2 validating would leave 1 to train on, so none validates and all 3 train
    assert loop.update_validation(["a.png", "b.png"], ["a.png", "b.png", "c.png"]) == []
    assert loop.update_validation(["a.png", "b.png", "c.png"], ["a.png", "b.png", "c.png"]) == []
    assert loop.run_names(["a.png", "b.png", "c.png"]) == []
    chosen = loop.update_validation(["a.png", "b.png"], ["a.png", "b.png", "c.png", "d.png"])
    assert chosen == ["a.png", "b.png"] and loop.run_names(["a.png", "b.png", "c.png", "d.png"]) == chosen
    assert loop.run_names(["a.png", "b.png", "c.png"]) == []  # a label removed: 2 would outnumber 1 again
    # it only grows: members stay while they are reviewed, new ones are the last reviewed
    names = [f"{i:02d}.png" for i in range(20)]
    grown = loop.update_validation(["a.png", "b.png", *names], ["a.png", "b.png", "c.png", *names])
    assert {"a.png", "b.png"} <= set(grown) and len(grown) == 4  # 15 % of 22, rounded up
    assert loop.run_names(["a.png", "c.png"]) == []  # one member labelled: not measurable


def test_new_members_are_the_most_recently_reviewed_images():
    from app.core.loop.loop_record import Correction

    loop = LoopRecord()
    names = [f"{i:02d}.png" for i in range(20)]
    # reviewed in the reverse of file order: 19.png first, 00.png last
    for minute, name in enumerate(reversed(names)):
        loop.corrections[name] = Correction(None, 1, 10, 10, 10, 1.0, reviewed=f"2026-01-01T12:{minute:02d}:00+00:00")
    first = loop.update_validation(names[15:], names)  # 5 reviewed: 19..15, 15 the latest
    assert first == ["15.png", "16.png"]
    grown = loop.update_validation(names, names)  # all 20: 3 members, the new one the last reviewed
    assert grown == ["00.png", "15.png", "16.png"]
    # without a recorded time the order given stands (the simulator's images, reviewed within one second)
    other = LoopRecord()
    assert other.update_validation(["a.png", "b.png", "c.png", "d.png", "e.png"], ["a.png", "b.png", "c.png",
                                                                                 "d.png", "e.png"]) == ["d.png",
                                                                                                        "e.png"]


def test_the_persons_own_members_never_outnumber_the_training_images():
    loop = LoopRecord()
    for name in ("a.png", "b.png", "c.png"):
        loop.set_member(name, True)
    labelled = ["a.png", "b.png", "c.png", "d.png"]
    assert loop.run_names(labelled) == []  # 3 validating, 1 training: the run trains on all 4 instead
    assert loop.run_names([*labelled, "e.png", "f.png"]) == ["a.png", "b.png", "c.png"]


@pytest.mark.parametrize(("labelled", "validation", "ok"), [
    (0, 0, True), (1, 0, True), (2, 1, True), (3, 1, True), (3, 2, False), (4, 2, True), (5, 3, False), (6, 3, True)])
def test_training_images_at_least_as_many_as_validation_ones(labelled, validation, ok):
    from app.core.loop.validation_split import leaves_enough_to_train

    assert leaves_enough_to_train(labelled, validation) is ok


def test_the_person_overrides_the_choice():
    loop = LoopRecord()
    loop.set_member("x.png", True)
    assert loop.validation == ["x.png"] and loop.added == ["x.png"]
    loop.update_validation(["a.png", "b.png", "c.png"], ["a.png", "b.png", "c.png", "x.png", "y.png"])
    assert "x.png" in loop.validation
    loop.set_member("x.png", False)
    loop.update_validation(["a.png", "b.png", "c.png", "x.png"], ["a.png", "b.png", "c.png", "x.png", "y.png"])
    assert "x.png" not in loop.validation and loop.excluded == ["x.png"]


def test_idle_stretches_count_at_most_the_cap():
    clock = ActivityClock(100.0)
    clock.tick(110.0)
    clock.tick(110.0 + 10 * IDLE_CAP_S)  # left open for a long while
    assert clock.take(115.0 + 10 * IDLE_CAP_S) == pytest.approx(10 + IDLE_CAP_S + 5)
    assert clock.take(116.0 + 10 * IDLE_CAP_S) == pytest.approx(1)


def test_a_correction_counts_what_changed_from_the_proposal():
    proposal = np.zeros((10, 10), np.uint8)
    final = proposal.copy()
    final[2:4, 2:5] = 1
    final[8:, 8:] = 255  # not labelled: not counted
    c = correction(final, proposal, model="m.safetensors", seconds=12.34)
    assert (c.model, c.wrong_px, c.regions, c.labelled_px, c.seconds) == ("m.safetensors", 6, 1, 96, 12.3)
    assert correction(final, None, model="m.safetensors", seconds=0).model is None  # labelled by hand


def test_a_correction_that_only_moves_a_boundary_is_forgiven_as_in_the_simulator():
    proposal = np.zeros((20, 20), np.uint8)
    proposal[5:15, 5:15] = 1
    final = np.zeros_like(proposal)
    final[6:16, 6:16] = 1  # the square moved one pixel down and right: no region to draw
    final[0:3, 17:20] = 2  # and a small object the model missed: one region to draw
    c = correction(final, proposal, model="m.safetensors", seconds=1)
    assert (c.tolerance, c.wrong_px, c.forgiven_px, c.regions, c.boundary_px) == (TOLERANCE, 38 + 9, 38, 1, 8)
    assert c == Correction.from_json(json.loads(json.dumps(asdict(c))))
    legacy = {k: v for k, v in asdict(c).items() if k not in ("tolerance", "forgiven_px")}
    assert (Correction.from_json(legacy).tolerance, Correction.from_json(legacy).forgiven_px) == (0, 0)


def test_score_text_says_when_a_score_is_not_measurable():
    assert score_text(0.7123, 3) == "mIoU 0.712 on 3 images"
    assert score_text(None, 1) == f"mIoU {NOT_MEASURABLE}"


def test_the_record_survives_the_project_file_and_bad_records_are_named(tmp_path):
    folder = make_project(tmp_path / "p", n=5, labelled=4)
    project = Project.open(folder)
    for e in project.labelled():
        project.set_status(e, "reviewed")
    assert project.validation_names() == project.loop.validation and len(project.loop.validation) == 2
    project.loop.add_seconds("img00.png", 5.0)
    project.save()
    again = Project.open(folder)
    assert again.loop.validation == project.loop.validation and again.loop.seconds == {"img00.png": 5.0}
    doc = json.loads((folder / "segassist.json").read_text())
    doc["loop"]["corrections"] = {"img00.png": {"regions": 1}}
    (folder / "segassist.json").write_text(json.dumps(doc))
    with pytest.raises(ProjectFileError, match="segassist.json: loop: 'boundary_px'"):
        Project.open(folder)
