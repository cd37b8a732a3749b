"""Two instances on one folder: a lock keeps a second process out (or read-only), and saves never
overwrite a label or project file that changed on disk since it was read."""

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core.storage.project import ChangedOnDiskError, Project
from app.core.storage.project_lock import LOCK_NAME, ProjectLockedError, read_lock
from engine.images import read_label, write_image

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from app.core.storage.project import Project
project = Project.open(sys.argv[1])
print("ready", flush=True)
time.sleep(60)
"""


def make_folder(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    for i in range(2):
        write_image(folder / f"img{i}.png", np.full((16, 20, 3), 40 * i, np.uint8))
    return folder


def test_a_label_changed_on_disk_is_never_overwritten_without_asking(tmp_path):
    folder = make_folder(tmp_path)
    a, b = Project.open(folder), Project.open(folder)
    doc_a = a.load_document(a.entry("img0.png"))
    doc_b = b.load_document(b.entry("img0.png"))
    doc_a.paint((0, 0), np.ones((4, 4), bool), 1)
    a.save_document(a.entry("img0.png"), doc_a)
    doc_b.paint((8, 8), np.ones((4, 4), bool), 0)
    with pytest.raises(ChangedOnDiskError, match="img0.png.*changed on disk"):
        b.save_document(b.entry("img0.png"), doc_b)
    assert (read_label(a.label_path(a.entry("img0.png")))[:4, :4] == 1).all()  # A's stroke is still there
    assert doc_b.dirty and b.journal.pending()  # B's edit is kept
    b.save_document(b.entry("img0.png"), doc_b, force=True)  # the person said: overwrite
    assert (read_label(b.label_path(b.entry("img0.png")))[8:12, 8:12] == 0).all()


def test_a_project_file_changed_on_disk_is_never_overwritten_without_asking(tmp_path):
    folder = make_folder(tmp_path)
    a, b = Project.open(folder), Project.open(folder)
    a.add_class("car")
    with pytest.raises(ChangedOnDiskError, match="segassist.json"):
        b.set_status(b.entry("img1.png"), "reviewed")
    assert [c.name for c in Project.open(folder).classes] == ["background", "object", "car"]
    a.set_status(a.entry("img1.png"), "reviewed")  # A's own writes go on


def test_a_second_process_is_refused_then_read_only_and_a_killed_holder_leaves_a_stale_lock(tmp_path):
    folder = make_folder(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], cwd=ROOT, stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        with pytest.raises(ProjectLockedError, match=f"process {child.pid}") as locked:
            Project.open(folder)
        assert locked.value.info.pid == child.pid and locked.value.info.host
        viewer = Project.open(folder, read_only=True)
        doc = viewer.load_document(viewer.entry("img0.png"))
        doc.paint((0, 0), np.ones((2, 2), bool), 1)  # kept in memory; nothing reaches the folder
        assert viewer.journal.unwritten("img0") == 1 and not viewer.journal.path("img0").exists()
        with pytest.raises(OSError) as refused:
            viewer.save_document(viewer.entry("img0.png"), doc)
        assert refused.value.errno == errno.EROFS and "another window" in str(refused.value)
        with pytest.raises(OSError):
            viewer.save()
        viewer.redirect(tmp_path / "elsewhere")  # the way out: another folder
        viewer.save_document(viewer.entry("img0.png"), doc)
        assert (tmp_path / "elsewhere" / "labels" / "img0.png").is_file()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    project = Project.open(folder)  # the holder is gone: its lock is stale and taken over
    info = read_lock(folder / ".segassist" / LOCK_NAME)
    assert info.pid == os.getpid()
    project.close()
    assert not (folder / ".segassist" / LOCK_NAME).exists()
