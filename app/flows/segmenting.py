"""Auto-segmenting: the current image, all images, or the unlabelled ones, on the model's worker thread.

Each proposal is cached on disk by the worker (the file half of `Project.save_prediction`), recorded
in the project on the GUI thread, and shown at once when it belongs to the open image. The flow gets
its dependencies explicitly (the editor, which holds the project and the open document; the model
service; the model flow, which knows how the model's classes map onto the project's) and reports
through signals; it never reaches into the window.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, Signal

import engine
from app.core.loop.class_match import relabel


class AutoSegment(QObject):
    """Runs the active model over the project's images; one run at a time."""

    finished = Signal(str)        # how the run ended: "done", "cancelled" or "failed"
    message = Signal(str, int)    # a line for the status bar, and for how long (ms; 0 = until replaced)
    failed = Signal(str, str)     # (title, text) of a failure worth a message box
    busy = Signal(object, int, int)  # (text or None when idle, done, total)
    predicted = Signal(int)       # image index whose proposal was just recorded

    def __init__(self, editor, models, model_flow, parent: QObject | None = None):
        super().__init__(parent)
        self.editor, self.models, self.model_flow = editor, models, model_flow
        self.job = None
        self.table = None  # model index -> project index for the run in progress

    @property
    def project(self):
        return self.editor.project

    @property
    def running(self) -> bool:
        return self.job is not None

    def _say(self, text: str, ms: int = 6000) -> None:
        self.message.emit(text, ms)

    def current(self) -> None:
        if self.editor.doc is None:
            self._say("Open an image first")
            return
        self.run([self.editor.index])

    def all(self) -> None:
        project, index = self.project, self.editor.index
        if project is None:
            return
        order = [i for i, e in enumerate(project.images) if not e.error]
        if index in order:  # the open image first
            order.remove(index)
            order.insert(0, index)
        self.run(order)

    def unlabelled(self) -> None:
        """The open image and the images nobody has labelled yet (after training a new model version)."""
        project, index = self.project, self.editor.index
        if project is not None:
            order = [i for i, e in enumerate(project.images)
                     if not e.error and e.status in ("unlabelled", "predicted") and i != index]
            self.run(([index] if self.editor.doc is not None else []) + order)

    def run(self, indices: list[int]) -> None:
        """Segment `indices`, once the model's classes fit the project's (the person is asked when not)."""
        if self.models.active is None:
            self._say("No model yet: train one (Training panel), or open or create one (Model panel)")
            return
        if not indices:
            self._say("No image to segment")
            return
        if self.job is not None:
            self._say("Already segmenting; cancel first to start again")
            return
        self.model_flow.ensure_classes(lambda: self._run(indices))

    def _run(self, indices: list[int]) -> None:
        active, table = self.models.active, self.model_flow.class_table()
        if active is None or table is None or self.job is not None:
            return
        self.table = table
        project, editor = self.project, self.editor
        items = []
        for i in indices:
            if i == editor.index and editor.doc is not None:
                items.append((i, lambda image=editor.doc.image: image))
            else:
                items.append((i, lambda path=project.images[i].path: engine.read_image(path)))
        model_name = active.path.name if active.path else None

        def cache(index: int, prediction) -> tuple[np.ndarray, float | None]:  # on the worker thread
            labels = relabel(prediction.labels, table)
            entropy = project.write_prediction(project.images[index], labels, prediction.confidence,
                                               prediction.entropy, model=model_name)
            return labels, entropy

        started = time.perf_counter()
        self.busy.emit("Starting…", 0, len(items))

        def progress(done: int, total: int, text: str) -> None:
            self.busy.emit(text, done, total)
            self._say(text.capitalize() + "…", 0)

        def end(outcome: str, detail: str) -> None:
            self.job = None
            self.busy.emit(None, 0, 0)
            self._say(f"Segmenting {detail} ({time.perf_counter() - started:.1f} s)")
            self.finished.emit(outcome)

        def failed(msg: str) -> None:
            end("failed", "failed")
            self.failed.emit("Segmentation failed", f"{msg}\n\nNo label was changed.")

        def each(item) -> None:
            if self.project is project:  # another project opened meanwhile: its images are not these
                self._on_prediction(item)

        self.job = self.models.predict_images(
            items, after=cache, on_each=each, on_progress=progress,
            on_done=lambda n: end("done", f"done: {n} image{'s' if n != 1 else ''}"), on_failed=failed,
            on_cancelled=lambda: end("cancelled", "cancelled"))

    def _on_prediction(self, item) -> None:
        index, prediction, cached, error = item
        project = self.project
        entry = project.images[index]
        if prediction is None:
            self._say(f"{entry.name}: {error}", 10000)
            return
        if error is not None:  # predicted, but the cache could not be written
            self._say(f"Could not cache the proposal of {entry.name}: {error}", 10000)
            labels = relabel(prediction.labels, self.table)
            mean_entropy = float(prediction.entropy.mean())
        else:
            labels, mean_entropy = cached
        project.record_prediction(entry, mean_entropy)
        self.editor.show_prediction(index, labels, prediction.confidence, prediction.entropy)
        self.predicted.emit(index)
