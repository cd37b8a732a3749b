"""The recovery journal: every committed write of an image's labels, appended durably until the next save.

One append-only file per image, `<folder>/<stem>.journal`. Each record is one stroke (an undo is
recorded as the stroke that writes the old values back), framed as

    b"SAJ1" | payload length (uint32 LE) | CRC-32 of the payload (uint32 LE) | payload (zlib)

so a record torn by a crash mid-write fails its check and is ignored with everything after it.
Strokes hold absolute values, so replaying them onto the saved labels (even onto labels that
already hold some of them) gives the labels as they were after the last recorded stroke.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from app.core.document import LabelDocument
from app.core.stroke import Atom, Region, Stroke, union
from engine.atomic import atomic_write_bytes, fsync_dir

MAGIC = b"SAJ1"
SUFFIX = ".journal"
_FRAME = struct.Struct("<4sII")
_HEADER = struct.Struct("<QIII")  # revision, atoms, image height, image width
_ATOM = struct.Struct("<iiiiBBI")  # y0, x0, y1, x1, kind, value, changed pixels
_SCALAR, _VALUES, _RUNS = 0, 1, 2  # one value for all; a value per changed pixel; the same as runs


class JournalError(ValueError):
    """A journal that cannot be applied; the message names the file and the problem."""


class Journal:
    """Recovery journals of one project, one file per image stem, inside `folder`."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, stem: str) -> Path:
        return self.folder / f"{stem}{SUFFIX}"

    def record(self, stem: str, stroke: Stroke, revision: int = 0, shape: tuple[int, int] = (0, 0)) -> None:
        """Append `stroke` to the stem's journal and flush it to disk (fsync) before returning."""
        data = encode(stroke, revision, shape)
        path = self.path(stem)
        created = not path.exists()
        if created:
            self.folder.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if created:
            fsync_dir(self.folder)

    def attach(self, stem: str, doc: LabelDocument) -> None:
        """Record every write the document commits from now on."""
        doc.stroke_listeners.append(lambda stroke, revision: self.record(stem, stroke, revision, doc.shape))

    def stems(self) -> list[str]:
        """Stems that have a journal file."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name[: -len(SUFFIX)] for p in self.folder.iterdir() if p.name.endswith(SUFFIX))

    def read(self, stem: str) -> list[tuple[int, Stroke]]:
        """The stem's recorded `(revision, stroke)`s, oldest first (a torn tail is left out)."""
        return [(rev, stroke) for rev, stroke, _, _ in self._read(stem)]

    def _read(self, stem: str) -> list[tuple[int, Stroke, tuple[int, int], bytes]]:
        path = self.path(stem)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise JournalError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
        return list(_records(path, data))

    def pending(self) -> dict[str, list[Stroke]]:
        """Every stem's recorded strokes that no save has cleared yet."""
        out = {}
        for stem in self.stems():
            strokes = [s for _, s in self.read(stem)]
            if strokes:
                out[stem] = strokes
        return out

    @staticmethod
    def replay(doc: LabelDocument, strokes) -> Region | None:
        """Write the strokes onto `doc` in order (each becomes an undo step). Returns the changed region."""
        try:
            return union([doc.replay(stroke) for stroke in strokes])
        except ValueError as exc:
            raise JournalError(f"a journal stroke does not fit the image: {exc}") from exc

    def restore(self, stem: str, doc: LabelDocument) -> int:
        """Replay the stem's journal onto `doc` (freshly loaded from the saved labels).

        The document's `revision` continues from the journal's, so later records and `clear(upto=)`
        line up. Returns the number of strokes replayed; raises `JournalError` naming the file when
        the journal was written for an image of another size.
        """
        path = self.path(stem)
        records = self._read(stem)
        if not records:
            return 0
        for _, _, shape, _ in records:
            if shape != (0, 0) and shape != doc.shape:
                raise JournalError(f"{path}: written for an image of {shape[0]}x{shape[1]} pixels, "
                                   f"but the image is {doc.shape[0]}x{doc.shape[1]}")
        try:
            self.replay(doc, [stroke for _, stroke, _, _ in records])
        except JournalError as exc:
            raise JournalError(f"{path}: {exc}") from exc
        doc.revision = max(doc.revision, max(rev for rev, _, _, _ in records))
        return len(records)

    def clear(self, stem: str, upto: int | None = None) -> None:
        """Forget the stem's journal, or only its records with revision <= `upto` (saved meanwhile)."""
        path = self.path(stem)
        if not path.exists():
            return
        if upto is not None:
            keep = [raw for rev, _, _, raw in _records(path, path.read_bytes()) if rev > upto]
            if keep:
                atomic_write_bytes(path, b"".join(keep))
                return
        path.unlink(missing_ok=True)
        fsync_dir(self.folder)

    def set_aside(self, stem: str, reason: str) -> Path | None:
        """Move a journal that cannot be applied out of the way (kept, never deleted). Returns its new path."""
        path = self.path(stem)
        if not path.exists():
            return None
        target = path.with_name(f"{path.name}.unusable")
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}.unusable{n}")
        os.replace(path, target)
        target.with_name(target.name + ".txt").write_text(reason + "\n", encoding="utf-8")
        return target


def encode(stroke: Stroke, revision: int = 0, shape: tuple[int, int] = (0, 0)) -> bytes:
    """One framed journal record holding `stroke`."""
    parts = [_HEADER.pack(revision, len(stroke.atoms), shape[0], shape[1])]
    for atom in stroke.atoms:
        if isinstance(atom.new, np.ndarray):
            values = np.ascontiguousarray(atom.new, np.uint8)
            runs = _runs(values)
            kind = _RUNS if runs is not None else _VALUES
            parts.append(_ATOM.pack(*atom.region, kind, 0, atom.count))
            parts.append(np.packbits(atom.mask, axis=None).tobytes())
            if runs is None:
                parts.append(values.tobytes())
            else:
                starts, run_values = runs
                parts += [struct.pack("<I", starts.size), starts.tobytes(), run_values.tobytes()]
        else:
            parts.append(_ATOM.pack(*atom.region, _SCALAR, int(atom.new), atom.count))
            parts.append(np.packbits(atom.mask, axis=None).tobytes())
    payload = zlib.compress(b"".join(parts), 1)
    return _FRAME.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode(path: Path, payload: bytes) -> tuple[int, Stroke, tuple[int, int]]:
    """The `(revision, stroke, image shape)` of one record's payload."""
    try:
        body = zlib.decompress(payload)
        revision, n, h, w = _HEADER.unpack_from(body, 0)
        pos = _HEADER.size
        atoms = []
        for _ in range(n):
            y0, x0, y1, x1, kind, value, count = _ATOM.unpack_from(body, pos)
            pos += _ATOM.size
            size = (y1 - y0) * (x1 - x0)
            nbytes = (size + 7) // 8
            bits = np.frombuffer(body, np.uint8, nbytes, pos)
            mask = np.unpackbits(bits, count=size).astype(bool).reshape(y1 - y0, x1 - x0)
            pos += nbytes
            if int(np.count_nonzero(mask)) != count:
                raise ValueError("mask and value count disagree")
            if kind == _SCALAR:
                new: int | np.ndarray = value
            elif kind == _VALUES:
                new = np.frombuffer(body, np.uint8, count, pos).copy()
                pos += count
            elif kind == _RUNS:
                (nruns,) = struct.unpack_from("<I", body, pos)
                starts = np.frombuffer(body, np.uint32, nruns, pos + 4).astype(np.intp)
                run_values = np.frombuffer(body, np.uint8, nruns, pos + 4 + 4 * nruns)
                pos += 4 + 5 * nruns
                new = np.repeat(run_values, np.diff(starts, append=count))
            else:
                raise ValueError(f"unknown atom kind {kind}")
            atoms.append(Atom((y0, x0, y1, x1), mask, np.empty(0, np.uint8), new))
    except (zlib.error, struct.error, ValueError) as exc:
        raise JournalError(f"{path}: a damaged record ({exc})") from exc
    return revision, Stroke(tuple(atoms)), (h, w)


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Run starts and values when runs make `values` (a label map's pixels) much smaller; else None."""
    if values.size < 4096 or values.size >= 1 << 32:
        return None
    starts = np.flatnonzero(values[1:] != values[:-1]) + 1
    if 5 * (starts.size + 1) > values.size // 4:
        return None
    starts = np.concatenate([np.zeros(1, np.intp), starts]).astype(np.uint32)
    return starts, values[starts]


def _records(path: Path, data: bytes):
    pos = 0
    while pos + _FRAME.size <= len(data):
        magic, length, crc = _FRAME.unpack_from(data, pos)
        end = pos + _FRAME.size + length
        if magic != MAGIC or end > len(data):
            return
        payload = data[pos + _FRAME.size:end]
        if zlib.crc32(payload) != crc:
            return
        revision, stroke, shape = decode(path, payload)
        yield revision, stroke, shape, data[pos:end]
        pos = end
