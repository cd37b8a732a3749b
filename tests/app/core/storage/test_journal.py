"""The recovery journal: durable records, torn tails, undo as writes, partial clears, kill -9 recovery."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from app.core.editing import tools
from app.core.editing.document import LabelDocument
from app.core.storage.journal import Journal, JournalError, encode
from app.core.storage.project import Project
from engine.images import read_label, write_image

ROOT = Path(__file__).resolve().parents[4]


def blank_doc(shape=(48, 64), labels=None):
    return LabelDocument(np.zeros((*shape, 3), np.uint8), labels)


def paint_some(doc, rng):
    """A brush stroke of several moves, a polygon, and an accept-proposal with array values."""
    doc.begin_stroke()
    pts = rng.uniform(0, min(doc.shape), (5, 2))
    for p0, p1 in zip(pts, pts[1:], strict=False):
        doc.apply(*tools.brush_segment(doc.shape, p0, p1, 4), int(rng.integers(0, 3)))
    doc.end_stroke()
    doc.paint(*tools.polygon_mask(doc.shape, rng.uniform(0, min(doc.shape), (5, 2))), 2)
    proposal = rng.integers(0, 3, doc.shape, dtype=np.uint8)
    region = tools.brush_segment(doc.shape, (10, 10), (30, 40), 6)
    doc.paint(*tools.accept_proposal(proposal, doc.labels, region))


def test_replaying_the_journal_gives_the_same_labels(tmp_path):
    rng = np.random.default_rng(0)
    start = rng.integers(0, 3, (48, 64), dtype=np.uint8)
    doc = blank_doc(labels=start)
    journal = Journal(tmp_path / "journal")
    journal.attach("a", doc)
    paint_some(doc, rng)
    doc.undo()  # recorded as the write that puts the old values back
    doc.undo()
    doc.redo()
    again = blank_doc(labels=start)
    assert journal.restore("a", again) == 6
    np.testing.assert_array_equal(again.labels, doc.labels)
    assert again.revision == doc.revision == 6
    assert list(journal.pending()) == ["a"]


def test_replaying_onto_labels_that_already_hold_the_strokes_changes_nothing(tmp_path):
    doc = blank_doc()
    journal = Journal(tmp_path)
    journal.attach("a", doc)
    paint_some(doc, np.random.default_rng(1))
    saved = doc.labels.copy()  # as if the save wrote these but the journal was not yet cleared
    again = blank_doc(labels=saved)
    journal.restore("a", again)
    np.testing.assert_array_equal(again.labels, saved)


def test_a_torn_last_record_is_ignored(tmp_path):
    doc = blank_doc()
    journal = Journal(tmp_path)
    journal.attach("a", doc)
    doc.paint((0, 0), np.ones((4, 4), bool), 1)
    doc.paint((10, 10), np.ones((4, 4), bool), 2)
    path = journal.path("a")
    data = path.read_bytes()
    path.write_bytes(data[:-3])  # the last write was cut short by a crash
    strokes = journal.pending()["a"]
    assert len(strokes) == 1
    again = blank_doc()
    Journal.replay(again, strokes)
    assert (again.labels[:4, :4] == 1).all() and (again.labels[10:14, 10:14] == 255).all()
    flipped = bytearray(data)
    flipped[20] ^= 0xFF  # a damaged first record: skipped, the intact one after it is kept
    path.write_bytes(bytes(flipped))
    strokes = journal.pending()["a"]
    assert len(strokes) == 1 and strokes[0].atoms[0].region == (10, 10, 14, 14)
    assert journal.skipped["a"] == 1


def test_clear_up_to_a_revision_keeps_later_records(tmp_path):
    doc = blank_doc()
    journal = Journal(tmp_path)
    journal.attach("a", doc)
    doc.paint((0, 0), np.ones((4, 4), bool), 1)
    doc.paint((10, 10), np.ones((4, 4), bool), 2)
    journal.clear("a", upto=1)
    assert [rev for rev, _ in journal.read("a")] == [2]
    journal.clear("a", upto=2)
    assert not journal.path("a").exists()
    journal.clear("a")  # nothing there: fine


def test_a_journal_for_another_image_size_is_refused(tmp_path):
    journal = Journal(tmp_path)
    doc = blank_doc((20, 20))
    journal.attach("a", doc)
    doc.paint((0, 0), np.ones((4, 4), bool), 1)
    with pytest.raises(JournalError, match=r"a\.journal.*20x20.*48x64"):
        journal.restore("a", blank_doc())
    kept = journal.set_aside("a", "does not fit")
    assert kept.exists() and not journal.path("a").exists()


@pytest.mark.parametrize("values", [
    np.arange(12, dtype=np.uint8).reshape(3, 4),  # a few values
    np.repeat(np.arange(8, dtype=np.uint8), 1000).reshape(80, 100),  # long runs, as model proposals have
    np.random.default_rng(0).integers(0, 9, (80, 100), dtype=np.uint8),  # no runs to speak of
])
def test_records_round_trip_array_values(tmp_path, values):
    doc = blank_doc((100, 120))
    mask = np.random.default_rng(1).random(values.shape) < 0.9
    stroke = doc.paint((5, 6), mask, values)
    path = tmp_path / "x.journal"
    path.write_bytes(encode(stroke, 7, doc.shape) + encode(stroke.inverse(), 8, doc.shape))
    [(rev, back), (_, inverse)] = Journal(tmp_path).read("x")
    assert rev == 7
    again = blank_doc((100, 120))
    again.replay(back)
    np.testing.assert_array_equal(again.labels, doc.labels)
    again.replay(inverse)
    assert (again.labels == 255).all()


KILLED_CHILD = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from app.core.editing import tools
    from app.core.storage.project import Project

    project = Project.open(sys.argv[1])
    entry = project.entry("scene.png")
    doc = project.load_document(entry)
    doc.begin_stroke()
    for p0, p1 in [((5.5, 5.5), (5.5, 40.5)), ((5.5, 40.5), (30.5, 40.5))]:
        doc.apply(*tools.brush_segment(doc.shape, p0, p1, 3), 1)
    doc.end_stroke()
    doc.paint(*tools.flood_fill(doc.labels, (60, 60)), 2)
    doc.paint(*tools.polygon_mask(doc.shape, [(40, 2), (60, 2), (60, 20)]), 0)
    doc.undo()
    np.save(sys.argv[2], doc.labels)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_edits_survive_kill_9_and_come_back_at_open(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    write_image(folder / "scene.png", np.full((64, 80, 3), 90, np.uint8))
    Project.open(folder, classes=["background", "road", "car"]).close()  # the killed child takes the lock
    expected = tmp_path / "expected.npy"
    child = subprocess.run([sys.executable, "-c", KILLED_CHILD, str(folder), str(expected)], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    want = np.load(expected)
    assert (want == 1).any() and (want == 2).any() and not (want == 0).any()

    project = Project.open(folder)
    entry = project.entry("scene.png")
    assert project.pending_recovery() == [entry]
    doc = project.load_document(entry)
    np.testing.assert_array_equal(doc.labels, want)
    assert doc.dirty and "restored 4 unsaved edits" in entry.note
    doc.undo()  # recovered edits are undo steps again (the last one wrote back the polygon's old values)
    project.save_document(entry, doc)
    assert project.journal.pending() == {}
    assert (read_label(project.label_path(entry)) == doc.labels).all()
    assert Project.open(folder).load_document(entry).dirty is False


def test_a_journal_that_cannot_be_written_reports_at_once_and_keeps_the_edit(tmp_path):
    (tmp_path / "journal").write_text("a file where the journal folder should be")
    doc = blank_doc()
    journal = Journal(tmp_path / "journal")
    journal.attach("a", doc)
    heard = []
    journal.on_change.append(lambda stem, error: heard.append((stem, error)))
    seen = []
    doc.listeners.append(seen.append)
    doc.apply((0, 0), np.ones((4, 4), bool), 1)
    doc.end_stroke()  # never raises into the tool that painted
    assert (doc.labels[:4, :4] == 1).all() and doc.dirty and doc.can_undo
    assert len(heard) == 1 and heard[0][0] == "a" and "journal" in heard[0][1]
    doc.undo()
    assert (doc.labels == 255).all() and seen[-1] == (0, 0, 4, 4)  # undone and repainted all the same
    assert journal.unwritten("a") == 2 and len(heard) == 1  # told once, both strokes held in order
    (tmp_path / "journal").unlink()
    assert journal.retry()
    assert heard[-1] == ("a", None) and journal.unwritten() == 0
    again = blank_doc()
    assert journal.restore("a", again) == 2
    np.testing.assert_array_equal(again.labels, doc.labels)
