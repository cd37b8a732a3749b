"""The recovery journal: every committed write of an image's labels, appended durably until the next save.

One append-only file per image, `<folder>/<stem>.journal`. Each record is one stroke (an undo is
recorded as the stroke that writes the old values back), framed as

    b"SAJ1" | payload length (uint32 LE) | CRC-32 of the payload (uint32 LE) | payload (zlib)

A record torn by a crash or a full disk fails its check; the reader skips it and resynchronises on
the next magic whose record passes its check, so every intact record after a damaged one is kept,
and the writer cuts a torn tail off before it appends. Strokes hold absolute values, so replaying
them onto the saved labels (even onto labels that already hold some of them) gives the labels as
they were after the last recorded stroke.

A stroke being drawn is journalled too, in chunks (every `CHUNK_S` seconds once it has been drawn
that long, so a fill or a polygon costs one record): each chunk is a record of the writes since the
previous one, flagged as part of the stroke that will get the next revision (`PART` in the revision
field). When that stroke ends, its whole record supersedes the chunks; chunks with no whole record
after them are a stroke that a crash interrupted, replayed as one stroke up to its last chunk
(`interrupted`).

A write that fails (permission, full or read-only disk) never raises into the caller that
committed the stroke: the record stays in memory, in order, and is written before any later one;
`on_change` listeners hear about the failure at once and about the recovery when a retry succeeds.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from app.core.editing.document import LabelDocument
from app.core.editing.stroke import Atom, Region, Stroke, union
from engine.atomic import atomic_write_bytes, fsync_dir

log = logging.getLogger(__name__)

MAGIC = b"SAJ1"
SUFFIX = ".journal"
_FRAME = struct.Struct("<4sII")
_HEADER = struct.Struct("<QIII")  # revision, atoms, image height, image width
_ATOM = struct.Struct("<iiiiBBI")  # y0, x0, y1, x1, kind, value, changed pixels
_SCALAR, _VALUES, _RUNS = 0, 1, 2  # one value for all; a value per changed pixel; the same as runs
MAX_RECORD = 1 << 31  # a length field beyond this is damage, not a record
PART = 1 << 63  # in a record's revision: a chunk of the stroke being drawn, which will get revision `rev & ~PART`
CHUNK_S = 0.25  # how often a stroke being drawn reaches the journal


def _revision(rev: int) -> int:
    return rev & ~PART


class JournalError(ValueError):
    """A journal that cannot be applied; the message names the file and the problem."""


class JournalWriteError(OSError):
    """A journal record that could not be written; the stroke is kept in memory until a retry writes it."""


class Journal:
    """Recovery journals of one project, one file per image stem, inside `folder`.

    `on_change` listeners are called as `listener(stem, error)` when writing the stem's journal
    starts failing (`error` says why) and with `error=None` when its held records reach the disk.
    With `writable=False` nothing is ever written: records are held in memory and reported.
    """

    def __init__(self, folder: str | Path, *, writable: bool = True, read_only_reason: str = ""):
        self.folder = Path(folder)
        self.writable = writable
        self.read_only_reason = read_only_reason or "the project is open read-only"
        self.on_change: list[Callable[[str, str | None], None]] = []
        self.errors: dict[str, str] = {}            # stems whose last write failed, with why
        self.skipped: dict[str, int] = {}           # damaged records skipped by the last read, per stem
        self._held: dict[str, list[tuple[int, bytes]]] = {}  # (revision, record) not on disk yet, in order
        self._ends: dict[str, int] = {}             # where the last intact record ends, per stem file

    def path(self, stem: str) -> Path:
        return self.folder / f"{stem}{SUFFIX}"

    # ---- writing -------------------------------------------------------------------------------------

    def record(self, stem: str, stroke: Stroke, revision: int = 0, shape: tuple[int, int] = (0, 0)) -> None:
        """Append `stroke` to the stem's journal and flush it to disk (fsync) before returning.

        Raises `JournalWriteError` when it cannot be written; the record is then held in memory and
        written (before any later one) by the next `record` or `retry` that succeeds.
        """
        self._held.setdefault(stem, []).append((revision, encode(stroke, revision, shape)))
        self._flush(stem)

    def unwritten(self, stem: str | None = None) -> int:
        """How many records (of `stem`, or of all stems) are held in memory, not on disk."""
        if stem is not None:
            return len(self._held.get(stem, ()))
        return sum(len(v) for v in self._held.values())

    def retry(self) -> bool:
        """Write every held record; True when none is left in memory."""
        ok = True
        for stem in [s for s, held in self._held.items() if held]:
            try:
                self._flush(stem)
            except JournalWriteError:
                ok = False
        return ok

    def relocate(self, folder: str | Path) -> None:
        """Write journals into `folder` from now on (records held in memory go there on the next write)."""
        self.folder = Path(folder)
        self.writable = True
        self._ends.clear()

    def _flush(self, stem: str) -> None:
        held = self._held.get(stem)
        if not held:
            return
        path = self.path(stem)
        try:
            if not self.writable:
                raise OSError(errno.EROFS, self.read_only_reason, str(path))
            self._append(stem, path, b"".join(data for _, data in held))
        except OSError as exc:
            why = f"{path}: {exc.strerror or exc}"
            first = stem not in self.errors
            self.errors[stem] = why
            if first:
                log.error("recovery journal not written: %s (%d record(s) held in memory)", why, len(held))
                self._tell(stem, why)
            raise JournalWriteError(exc.errno, why) from exc
        del self._held[stem]
        if self.errors.pop(stem, None) is not None:
            log.info("recovery journal %s written again", path)
            self._tell(stem, None)

    def _append(self, stem: str, path: Path, data: bytes) -> None:
        """Write `data` after the last intact record (cutting a torn tail off first), then fsync."""
        created = not path.exists()
        if created:
            self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            end = self._ends.get(stem)
            if end is None:
                end = _intact_end(_read_bytes(path))
            size = os.fstat(fd).st_size
            if size != end:
                if size > end:
                    log.warning("%s: cutting %d byte(s) of a torn record off before appending", path, size - end)
                os.ftruncate(fd, end)
            self._ends[stem] = end
            os.lseek(fd, end, os.SEEK_SET)
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    if n <= 0:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
                    view = view[n:]
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):  # no torn tail left behind when we can; else the next append cuts it
                    os.ftruncate(fd, end)
                raise
            self._ends[stem] = end + len(data)
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.folder)

    def _tell(self, stem: str, error: str | None) -> None:
        for listener in list(self.on_change):
            listener(stem, error)

    def attach(self, stem: str, doc: LabelDocument) -> None:
        """Record every write the document commits from now on, and the stroke being drawn in chunks (a
        failed write is reported, never raised)."""
        doc.stroke_listeners.append(self.recorder(stem, doc))

    def recorder(self, stem: str, doc: LabelDocument) -> Callable[[Stroke, int], None]:
        """The stroke listener that records `doc`'s writes as the stem's (`attach` adds it; the project's
        `Saving` calls it from the document's one listener, before anything else hears of the write).

        It also adds to `doc.listeners` the listener that journals the stroke being drawn in chunks."""
        sent: dict = {"atoms": 0, "at": None}  # atoms journalled of the open stroke; when its last chunk went

        def listener(stroke: Stroke, revision: int) -> None:
            sent["atoms"], sent["at"] = 0, None
            with contextlib.suppress(JournalWriteError):  # held in memory and reported through on_change
                self.record(stem, stroke, revision, doc.shape)

        def drawing(_region) -> None:
            atoms = doc.open_atoms()
            if not atoms:
                return
            now = time.monotonic()
            if sent["at"] is None:  # a stroke begins: a one-step stroke (a fill) ends before any chunk
                sent["at"] = now
                return
            if len(atoms) <= sent["atoms"] or now - sent["at"] < CHUNK_S:
                return
            chunk = Stroke(atoms[sent["atoms"]:])
            sent["atoms"], sent["at"] = len(atoms), now
            with contextlib.suppress(JournalWriteError):
                self.record(stem, chunk, PART | (doc.revision + 1), doc.shape)

        doc.listeners.append(drawing)
        return listener

    # ---- reading -------------------------------------------------------------------------------------

    def stems(self) -> list[str]:
        """Stems that have a journal file."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name[: -len(SUFFIX)] for p in self.folder.iterdir() if p.name.endswith(SUFFIX))

    def read(self, stem: str) -> list[tuple[int, Stroke]]:
        """The stem's recorded `(revision, stroke)`s, oldest first (damaged records are skipped; an
        interrupted stroke's chunks are one stroke)."""
        return [(rev, stroke) for rev, stroke, _, _ in self._strokes(stem)]

    def interrupted(self, stem: str) -> bool:
        """Whether the stem's journal ends in a stroke a crash cut off while it was being drawn."""
        return any(rev & PART for rev, _, _, _ in self._strokes(stem))

    def _strokes(self, stem: str) -> list[tuple[int, Stroke, tuple[int, int], bytes]]:
        """The records as strokes: chunks superseded by their whole stroke are dropped, the chunks of a stroke
        that never ended are joined into one (its revision keeps the `PART` flag)."""
        records = self._read(stem)
        whole = {rev for rev, _, _, _ in records if not rev & PART}
        out, open_parts = [], []
        for record in records:
            rev = record[0]
            if not rev & PART:
                out.append(record)
            elif _revision(rev) not in whole:
                open_parts.append(record)
        if open_parts:
            atoms = tuple(a for _, stroke, _, _ in open_parts for a in stroke.atoms)
            last = open_parts[-1]
            out.append((last[0], Stroke(atoms), last[2], b"".join(r[3] for r in open_parts)))
        return out

    def _read(self, stem: str) -> list[tuple[int, Stroke, tuple[int, int], bytes]]:
        path = self.path(stem)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise JournalError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
        records, skipped = _records(path, data)
        if skipped:
            log.warning("%s: skipped %d damaged record(s); kept %d intact one(s)", path, skipped, len(records))
            self.skipped[stem] = skipped
        else:
            self.skipped.pop(stem, None)
        return records

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
        records = self._strokes(stem)
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
        doc.revision = max(doc.revision, max(_revision(rev) for rev, _, _, _ in records))
        return len(records)

    # ---- after a save --------------------------------------------------------------------------------

    def clear(self, stem: str, upto: int | None = None) -> None:
        """Forget the stem's journal, or only its records with revision <= `upto` (saved meanwhile).

        Records held in memory are forgotten the same way (the saved labels hold them)."""
        held = [(rev, data) for rev, data in self._held.get(stem, ()) if upto is not None and _revision(rev) > upto]
        if held:
            self._held[stem] = held
        elif self._held.pop(stem, None) is not None and self.errors.pop(stem, None) is not None:
            self._tell(stem, None)
        if not self.writable:
            return
        path = self.path(stem)
        if not path.exists():
            self._ends.pop(stem, None)
            return
        if upto is not None:
            records, _ = _records(path, path.read_bytes())
            keep = [raw for rev, _, _, raw in records if _revision(rev) > upto]
            if keep:
                data = b"".join(keep)
                atomic_write_bytes(path, data)
                self._ends[stem] = len(data)
                return
        path.unlink(missing_ok=True)
        self._ends.pop(stem, None)
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
        self._ends.pop(stem, None)
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


def _frames(data: bytes):
    """`(start, end)` of every intact record; damage is skipped by searching for the next magic."""
    pos = 0
    while pos + _FRAME.size <= len(data):
        magic, length, crc = _FRAME.unpack_from(data, pos)
        end = pos + _FRAME.size + length
        if magic == MAGIC and length < MAX_RECORD and end <= len(data) \
                and zlib.crc32(memoryview(data)[pos + _FRAME.size:end]) == crc:
            yield pos, end
            pos = end
            continue
        pos = data.find(MAGIC, pos + 1)
        if pos < 0:
            return


def _records(path: Path, data: bytes) -> tuple[list[tuple[int, Stroke, tuple[int, int], bytes]], int]:
    """The intact, decodable records of a journal file's bytes, and how many damaged stretches were skipped."""
    records, skipped, expected = [], 0, 0
    for start, end in _frames(data):
        if start != expected:
            skipped += 1
        expected = end
        try:
            revision, stroke, shape = decode(path, data[start + _FRAME.size:end])
        except JournalError as exc:
            log.warning("%s", exc)
            skipped += 1
            continue
        records.append((revision, stroke, shape, data[start:end]))
    if expected != len(data):
        skipped += 1
    return records, skipped


def _intact_end(data: bytes) -> int:
    """Where the last intact record ends (0 for none): a torn tail after it is cut before appending."""
    ends = [end for _, end in _frames(data)]
    return ends[-1] if ends else 0


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
