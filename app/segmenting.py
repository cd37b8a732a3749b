"""Auto-segmenting: the current image, all images, or the unlabelled ones, on the model's worker thread.

Each proposal is cached on disk by the worker (the file half of `Project.save_prediction`), recorded
in the project on the GUI thread, and shown at once when it belongs to the open image.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, Signal

import engine
from app.core.class_match import relabel


class AutoSegment(QObject):
    """Runs the active model over images of main window `w`; one run at a time."""

    finished = Signal(str)  # how the run ended: "done", "cancelled" or "failed"

    def __init__(self, w):
        super().__init__(w)
        self.w = w
        self.job = None
        self.table = None  # model index -> project index for the run in progress

    @property
    def running(self) -> bool:
        return self.job is not None

    def current(self) -> None:
        if self.w.editor.doc is None:
            self.w.say("Open an image first")
            return
        self.run([self.w.editor.index])

    def all(self) -> None:
        project, index = self.w.project, self.w.editor.index
        if project is None:
            return
        order = [i for i, e in enumerate(project.images) if not e.error]
        if index in order:  # the open image first
            order.remove(index)
            order.insert(0, index)
        self.run(order)

    def unlabelled(self) -> None:
        """The open image and the images nobody has labelled yet (after training a new model version)."""
        project, index = self.w.project, self.w.editor.index
        if project is not None:
            order = [i for i, e in enumerate(project.images)
                     if not e.error and e.status in ("unlabelled", "predicted") and i != index]
            self.run(([index] if self.w.editor.doc is not None else []) + order)

    def run(self, indices: list[int]) -> None:
        """Segment `indices`, once the model's classes fit the project's (the person is asked when not)."""
        w = self.w
        if w.models.active is None:
            w.say("No model yet: train one (Training panel), or open or create one (Model panel)")
            return
        if not indices:
            w.say("No image to segment")
            return
        if self.job is not None:
            w.say("Already segmenting; cancel first to start again")
            return
        w.model_flow.ensure_classes(lambda: self._run(indices))

    def _run(self, indices: list[int]) -> None:
        w = self.w
        active, table = w.models.active, w.model_flow.class_table()
        if active is None or table is None or self.job is not None:
            return
        self.table = table
        project, editor = w.project, w.editor
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
        w.model_panel.set_busy("Starting…", 0, len(items))

        def progress(done: int, total: int, text: str) -> None:
            w.model_panel.set_busy(text, done, total)
            w.say(text.capitalize() + "…", 0)

        def end(outcome: str, detail: str) -> None:
            self.job = None
            w.model_panel.set_busy(None)
            w.update_enabled()
            w.say(f"Segmenting {detail} ({time.perf_counter() - started:.1f} s)")
            self.finished.emit(outcome)

        def failed(msg: str) -> None:
            end("failed", "failed")
            w.warn("Segmentation failed", f"{msg}\n\nNo label was changed.")

        self.job = w.models.predict_images(
            items, after=cache, on_each=self._on_prediction, on_progress=progress,
            on_done=lambda n: end("done", f"done: {n} image{'s' if n != 1 else ''}"), on_failed=failed,
            on_cancelled=lambda: end("cancelled", "cancelled"))

    def _on_prediction(self, item) -> None:
        w = self.w
        index, prediction, cached, error = item
        entry = w.project.images[index]
        if prediction is None:
            w.say(f"{entry.name}: {error}", 10000)
            return
        if error is not None:  # predicted, but the cache could not be written
            w.say(f"Could not cache the proposal of {entry.name}: {error}", 10000)
            labels = relabel(prediction.labels, self.table)
            mean_entropy = float(prediction.entropy.mean())
        else:
            labels, mean_entropy = cached
        w.project.record_prediction(entry, mean_entropy)
        w.editor.show_prediction(index, labels, prediction.confidence, prediction.entropy)
        w.images_panel.update_entry(index)
        w.update_enabled()
