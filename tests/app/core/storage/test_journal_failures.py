"""Journal writes that fail at the system calls (so it runs as root too): EACCES, ENOSPC, EROFS,
short writes, a torn tail followed by new records."""

import errno
import os

import numpy as np
import pytest

from app.core.editing.document import LabelDocument
from app.core.storage.journal import Journal, JournalWriteError


def blank_doc(shape=(48, 64)):
    return LabelDocument(np.zeros((*shape, 3), np.uint8))


def big_mask(rng, shape=(48, 64)):
    return rng.random(shape) < 0.5  # incompressible enough to make a record of a few KB


@pytest.mark.parametrize("code", [errno.EACCES, errno.ENOSPC, errno.EROFS])
@pytest.mark.parametrize("call", ["open", "write", "fsync"])
def test_a_failing_write_call_is_reported_and_the_strokes_come_back_after_a_retry(tmp_path, monkeypatch, code, call):
    journal = Journal(tmp_path / "journal")
    doc = blank_doc()
    journal.attach("a", doc)
    heard = []
    journal.on_change.append(lambda stem, error: heard.append(error))
    doc.paint((0, 0), np.ones((4, 4), bool), 1)  # written fine
    real = getattr(os, call)

    def failing(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, call, failing)
    doc.paint((10, 10), np.ones((4, 4), bool), 2)
    doc.paint((20, 20), np.ones((4, 4), bool), 0)
    assert len(heard) == 1 and os.strerror(code) in heard[0]
    assert journal.unwritten("a") == 2 and journal.errors["a"]
    with pytest.raises(JournalWriteError):
        journal.record("a", doc._undo[-1][0], doc.revision)  # a direct caller hears it as an OSError
    journal._held["a"].pop()
    monkeypatch.setattr(os, call, real)
    assert journal.retry() and heard[-1] is None
    again = blank_doc()
    assert journal.restore("a", again) == 3
    np.testing.assert_array_equal(again.labels, doc.labels)
    assert journal.skipped.get("a") is None


def test_a_short_write_then_a_full_disk_leaves_no_torn_record_that_hides_later_ones(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    journal = Journal(tmp_path)
    doc = blank_doc()
    journal.attach("a", doc)
    doc.paint((0, 0), np.ones((4, 4), bool), 1)
    real_write, real_truncate = os.write, os.ftruncate
    calls = []

    def short_then_full(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))  # the disk took half of it
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def no_truncate(fd, length):
        raise OSError(errno.EIO, os.strerror(errno.EIO))  # not even the clean-up works

    monkeypatch.setattr(os, "write", short_then_full)
    monkeypatch.setattr(os, "ftruncate", no_truncate)
    doc.paint((0, 0), big_mask(rng), 2)
    size_torn = journal.path("a").stat().st_size
    assert journal.unwritten("a") == 1 and size_torn > 0
    monkeypatch.setattr(os, "write", real_write)
    monkeypatch.setattr(os, "ftruncate", real_truncate)
    doc.paint((30, 30), np.ones((4, 4), bool), 0)  # the held record first, then this one
    assert journal.unwritten() == 0
    again = blank_doc()
    assert journal.restore("a", again) == 3
    np.testing.assert_array_equal(again.labels, doc.labels)
    assert "a" not in journal.skipped  # the torn half was cut off before appending


def test_a_torn_tail_from_an_earlier_session_is_cut_and_later_records_are_read(tmp_path):
    rng = np.random.default_rng(1)
    journal = Journal(tmp_path)
    doc = blank_doc()
    journal.attach("a", doc)
    doc.paint((0, 0), np.ones((4, 4), bool), 1)
    doc.paint((0, 0), big_mask(rng), 2)
    path = journal.path("a")
    data = path.read_bytes()
    path.write_bytes(data[:-100])  # the large stroke's record was cut (a full disk, then a kill)
    later = Journal(tmp_path)  # the next session: knows nothing of the file's history
    doc2 = blank_doc()
    later.restore("a", doc2)
    later.attach("a", doc2)
    doc2.paint((10, 10), np.ones((4, 4), bool), 1)
    doc2.paint((20, 20), np.ones((4, 4), bool), 2)
    records = Journal(tmp_path).read("a")
    assert len(records) == 3
    fresh = blank_doc()
    Journal(tmp_path).restore("a", fresh)
    np.testing.assert_array_equal(fresh.labels, doc2.labels)


def test_the_reader_resynchronises_past_a_torn_record_in_the_middle(tmp_path):
    """What an old writer left: a torn record with intact records appended after it."""
    rng = np.random.default_rng(2)
    journal = Journal(tmp_path)
    doc = blank_doc()
    journal.attach("a", doc)
    doc.paint((0, 0), np.ones((4, 4), bool), 1)
    first = journal.path("a").read_bytes()
    doc.paint((0, 0), big_mask(rng), 2)
    second = journal.path("a").read_bytes()[len(first):]
    doc.paint((10, 10), np.ones((4, 4), bool), 0)
    doc.paint((20, 20), np.ones((4, 4), bool), 1)
    rest = journal.path("a").read_bytes()[len(first) + len(second):]
    journal.path("a").write_bytes(first + second[: len(second) // 3] + rest)
    records = Journal(tmp_path).read("a")
    assert [rev for rev, _ in records] == [1, 3, 4]


def test_garbage_and_false_magics_never_yield_records(tmp_path):
    rng = np.random.default_rng(3)
    journal = Journal(tmp_path)
    doc = blank_doc()
    journal.attach("a", doc)
    doc.paint((0, 0), np.ones((4, 4), bool), 1)
    good = journal.path("a").read_bytes()
    for trial in range(50):
        noise = rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8).tobytes()
        noise = noise.replace(b"SAJ1", b"SAJ0") + b"SAJ1" + noise[:12]  # a magic with a bogus frame
        data = (noise + good) if trial % 2 else (good + noise)
        journal.path("a").write_bytes(data)
        assert len(Journal(tmp_path).read("a")) == 1
