"""The project lock: odd lock files never make a folder unopenable, a named holder can be taken over,
`segassist-convert` gives the lock back, and a folder that cannot be written opens read-only."""

from __future__ import annotations

import errno
import json
import os
import socket

import numpy as np
import pytest

from app.convert_cli import main
from app.core.storage import project_lock
from app.core.storage.project import Project
from app.core.storage.project_lock import LOCK_NAME, ProjectLock, ProjectLockedError, read_lock
from engine.images import write_image
from tests.hang_guard import hang_guard as deadline


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    write_image(folder / "a.png", np.full((8, 10, 3), 50, np.uint8))
    (folder / ".segassist").mkdir()
    return folder


def lock_path(folder):
    return folder / ".segassist" / LOCK_NAME


def write_lock(folder, **fields):
    doc = {"holder": "ann", "pid": 1, "host": socket.gethostname(), "created": "2026-01-01T00:00:00+00:00",
           "instance": "feed", **fields}
    lock_path(folder).write_text(json.dumps(doc))


def opens_and_holds(folder):
    with deadline(20):
        project = Project.open(folder)
    try:
        assert project.read_only is None
        assert read_lock(lock_path(folder)).pid == os.getpid()
    finally:
        project.close()
    assert not lock_path(folder).exists()


@pytest.mark.parametrize("odd", ["folder", "folder_with_files", "fifo", "deep_json", "huge_file", "garbage",
                                 "pid_2_40", "pid_0", "pid_negative", "pid_text"])
def test_an_odd_lock_never_makes_the_folder_unopenable(folder, odd):
    path = lock_path(folder)
    if odd == "folder":
        path.mkdir()
    elif odd == "folder_with_files":
        path.mkdir()
        (path / "x").write_text("x")
    elif odd == "fifo":
        os.mkfifo(path)
    elif odd == "deep_json":
        path.write_text("[" * 100_000 + "]" * 100_000)
    elif odd == "huge_file":
        with open(path, "wb") as f:
            f.truncate(1 << 30)  # sparse
    elif odd == "garbage":
        path.write_bytes(b"\xff\xfe{")
    elif odd == "pid_2_40":
        write_lock(folder, pid=2**40)
    elif odd == "pid_0":
        write_lock(folder, pid=0)
    elif odd == "pid_negative":
        write_lock(folder, pid=-1)
    else:
        write_lock(folder, pid="12x")
    opens_and_holds(folder)


def test_a_lock_from_another_host_is_offered_and_taken_over(folder):
    write_lock(folder, host="elsewhere", pid=4242)
    with pytest.raises(ProjectLockedError, match="ann on elsewhere") as refused:
        Project.open(folder)
    project = Project.open(folder, take_over=refused.value.info)
    try:
        assert read_lock(lock_path(folder)).pid == os.getpid() and project.read_only is None
    finally:
        project.close()


def test_a_live_holder_reusing_a_pid_is_taken_over_only_as_named(folder):
    holder = os.getppid()  # a live process that is not this one: a pid reused since the lock was written
    write_lock(folder, pid=holder, instance="old")
    with pytest.raises(ProjectLockedError) as refused:
        Project.open(folder)
    write_lock(folder, pid=holder, instance="another")  # the lock changed after the person saw it
    with pytest.raises(ProjectLockedError, match=f"process {holder}"):
        Project.open(folder, take_over=refused.value.info)
    with pytest.raises(ProjectLockedError) as again:
        Project.open(folder)
    Project.open(folder, take_over=again.value.info).close()


@pytest.mark.parametrize("error", [errno.EACCES, errno.EROFS, errno.EPERM])
def test_a_folder_that_cannot_be_written_opens_read_only_and_says_so(folder, monkeypatch, error):
    def refuse(cls, folder, **kwargs):
        raise OSError(error, os.strerror(error), str(folder / ".segassist" / LOCK_NAME))

    monkeypatch.setattr(ProjectLock, "acquire", classmethod(refuse))
    project = Project.open(folder)
    assert "cannot be written" in project.read_only and os.strerror(error) in project.read_only
    assert project.note.startswith("Opened read-only")
    doc = project.load_document(project.entry("a.png"))  # the images can be looked at
    assert doc.shape == (8, 10)
    with pytest.raises(OSError):
        project.save()
    project.close()


def test_segassist_convert_gives_the_lock_back(folder, tmp_path, capsys):
    project = Project.open(folder, ["x", "y"])
    from engine.images import write_label

    write_label(project.label_path(project.entry("a.png")), np.zeros((8, 10), np.uint8), project.classes)
    project.close()
    assert main(["export", str(folder), "index", str(tmp_path / "out")]) == 0
    assert not lock_path(folder).exists()
    assert main(["export", str(folder), "index", str(folder / "labels")]) == 2  # refused: inside the project
    assert not lock_path(folder).exists()


def test_segassist_convert_names_the_holder_and_takes_over_when_asked(folder, tmp_path, capsys):
    write_lock(folder, host="elsewhere", pid=4242)
    project = Project.open(folder, ["x", "y"], take_over=read_lock(lock_path(folder)))
    from engine.images import write_label

    write_label(project.label_path(project.entry("a.png")), np.zeros((8, 10), np.uint8), project.classes)
    project.close()
    write_lock(folder, host="elsewhere", pid=4242)
    assert main(["export", str(folder), "index", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ann on elsewhere" in err and "--take-over-lock" in err
    assert main(["export", str(folder), "index", str(tmp_path / "out"), "--take-over-lock"]) == 0
    assert not lock_path(folder).exists()


def test_a_stale_lock_of_this_host_is_still_taken_over_quietly(folder, monkeypatch):
    write_lock(folder, pid=2**22 + 17)  # no such process
    monkeypatch.setattr(project_lock, "_alive", lambda pid: False)
    opens_and_holds(folder)


def test_a_holder_with_unprintable_text_is_named_in_printable_text(folder):
    # json.dumps writes the lone surrogate and the escape as \udc80 and \u001b: valid JSON, odd text
    write_lock(folder, host="elsewhere", pid=4242, holder="ann\udc80\x1b[31m")
    with pytest.raises(ProjectLockedError) as refused:
        Project.open(folder)
    shown = refused.value.info.describe()
    assert shown.startswith("ann\\udc80\\x1b[31m on elsewhere")
    shown.encode("utf-8")  # a log line, a dialog and a UTF-8 terminal can take it
    assert str(refused.value).encode("utf-8")
