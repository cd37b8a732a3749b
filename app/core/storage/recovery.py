"""Crash recovery at project open: replay every image's journal onto its saved labels and save them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Recovery:
    """What came back: `(image name, strokes)` per image, and what could not be restored (and why)."""

    restored: list[tuple[str, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)  # images whose last stroke was cut off mid-drawing

    @property
    def strokes(self) -> int:
        return sum(n for _, n in self.restored)

    def summary(self, most: int = 10) -> str:
        """A few lines for the person: which images got how many strokes back."""
        if not self.restored:
            return ""
        n = len(self.restored)
        lines = [f"Unsaved edits from an earlier session came back: {self.strokes} stroke"
                 f"{'s' if self.strokes != 1 else ''} on {n} image{'s' if n != 1 else ''}, now saved."]
        lines += [f"  {name}: {k} stroke{'s' if k != 1 else ''}" for name, k in self.restored[:most]]
        if n > most:
            lines.append(f"  … and {n - most} more images")
        if self.interrupted:
            lines.append(f"The stroke being drawn on {', '.join(self.interrupted)} when SegAssist stopped came back "
                         "up to its last quarter second or so; check its end.")
        return "\n".join(lines)


def restore_journals(project) -> Recovery:
    """Replay the recovery journal of every image that has one and save the result.

    A save that fails leaves the edits in the journal for next time; a journal that does not fit its
    image is set aside by the project (said in the entry's note) and reported as a problem.
    """
    out = Recovery()
    if getattr(project, "read_only", None):  # the journal belongs to the window that holds the project
        return out
    for entry in project.pending_recovery():
        strokes = 0
        try:
            strokes = len(project.journal.read(entry.stem))
            cut_off = project.journal.interrupted(entry.stem)
            doc = project.load_document(entry)
            if doc.dirty:
                project.save_document(entry, doc)
                out.restored.append((entry.name, strokes))
                if cut_off:
                    out.interrupted.append(entry.name)
            doc.stroke_listeners.clear()
        except Exception as exc:  # noqa: BLE001 - report, keep the journal, go on with the rest
            out.problems.append(f"{entry.name}: {exc}")
        if entry.note and "could not be restored" in entry.note:
            out.problems.append(f"{entry.name}: {entry.note}")
    return out
