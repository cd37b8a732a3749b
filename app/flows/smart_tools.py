"""The smart tools' state in the window: paint guard, superpixels of the open image, SAM, clean-up.

Everything slow runs off the GUI thread: superpixels on a `JobRunner` (cancelled when the image
changes), SAM's checkpoint loading on another, its embeddings on `EmbeddingPrefetcher`'s thread
(the open image first, then the next two in the list), SAM's decoder on `decode_jobs`. The gestures
(`app.core.smart.smart_gestures`) reach this through the editor, their context, which asks `editor.smart`.
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QGraphicsPixmapItem

from app.canvas.interaction import mask_pixmap
from app.core.editing.protection import NO_GUARD, PaintGuard
from app.core.smart import cleanup, sam_prompts
from app.core.smart.smart_gestures import LOAD_SAM, SAM_EMBEDDING
from app.core.smart.superpixels import DEFAULT_SEGMENTS, compute_levels
from app.services.workers import Cancelled, JobRunner

log = logging.getLogger(__name__)

PREFETCH_NEXT = 2


class SmartTools(QObject):
    message = Signal(str)
    guardChanged = Signal(object)      # the PaintGuard now in force
    superpixelsChanged = Signal()      # levels of the open image arrived (or went)
    samChanged = Signal(str)           # a line on SAM's state: none, loading, embedding, ready
    _embedded = Signal(str, object)    # (image name, embedding) from the prefetch thread
    _embedFailed = Signal(str, str)

    def __init__(self, editor, canvas, parent: QObject | None = None):
        super().__init__(parent)
        self.editor, self.canvas = editor, canvas
        editor.smart = self
        self.guard: PaintGuard = NO_GUARD
        self.levels: list = []
        self.scale = 1  # index into DEFAULT_SEGMENTS: 0 coarse .. 2 fine
        self.show_boundaries = False
        self._boundary_item: QGraphicsPixmapItem | None = None
        self._sp_doc = None
        self.sp_jobs = JobRunner(1, self)
        self.sam_jobs = JobRunner(1, self)
        self.decode_jobs = JobRunner(1, self)  # SAM's mask decoder: one click at a time, off the GUI thread
        self.sam = None
        self.last_checkpoint: Path | None = None
        self.prefetcher = None
        self.sam_state = "none"
        self._embedded.connect(self._on_embedded, Qt.ConnectionType.QueuedConnection)
        self._embedFailed.connect(lambda n, why: self.message.emit(f"SAM could not embed {n}: {why}"),
                                  Qt.ConnectionType.QueuedConnection)
        editor.documentChanged.connect(self.on_document)

    # -- paint guard ----------------------------------------------------------------------------------
    def set_guard(self, guard: PaintGuard) -> None:
        self.guard = guard
        if self.editor.doc is not None:
            self.editor.doc.guard = guard
        names = [c.name for c in self.editor.project.classes] if self.editor.project else None
        self.message.emit(guard.describe(names).capitalize())
        self.guardChanged.emit(guard)

    # -- the open image -------------------------------------------------------------------------------
    def on_document(self, doc) -> None:
        if doc is not None:
            doc.guard = self.guard
        self.levels, self._sp_doc = [], doc
        self._drop_boundaries()
        self.sp_jobs.cancel_all()
        self.superpixelsChanged.emit()
        if doc is not None:
            self._start_superpixels(doc)
        self._prefetch()

    def _start_superpixels(self, doc) -> None:
        image, token = doc.image, weakref.ref(doc)  # the job must not keep the document alive

        def current() -> bool:
            return self._sp_doc is not None and self._sp_doc is token()

        def work(job):
            def on_level(i, level):
                job.partial((token, i, level))
            compute_levels(image, DEFAULT_SEGMENTS, should_stop=lambda: job.should_stop() or not current(),
                           on_level=on_level)
            if not current():
                raise Cancelled("image changed")

        self.sp_jobs.start("superpixels", work, on_partial=self._on_level,
                           on_failed=lambda msg: self.message.emit(f"Superpixels failed: {msg}"))

    def _on_level(self, item) -> None:
        token, i, level = item
        if self._sp_doc is None or token() is not self._sp_doc:
            return
        self.levels.append(level)
        self.superpixelsChanged.emit()
        if self.show_boundaries and i == min(self.scale, len(DEFAULT_SEGMENTS) - 1):
            self._draw_boundaries()

    # -- superpixels ----------------------------------------------------------------------------------
    def level(self):
        """The superpixels at the chosen scale (or the finest ready so far), or None."""
        if not self.levels:
            return None
        return self.levels[min(self.scale, len(self.levels) - 1)]

    def set_scale(self, index: int) -> None:
        self.scale = max(0, min(int(index), len(DEFAULT_SEGMENTS) - 1))
        if self.show_boundaries:
            self._draw_boundaries()
        self.superpixelsChanged.emit()

    def set_boundaries_visible(self, visible: bool) -> None:
        self.show_boundaries = bool(visible)
        if visible:
            self._draw_boundaries()
        else:
            self._drop_boundaries()

    def _draw_boundaries(self) -> None:
        self._drop_boundaries()
        level = self.level()
        if level is None:
            return
        seg = level.segments
        edge = np.zeros(seg.shape, bool)
        edge[:, :-1] |= seg[:, 1:] != seg[:, :-1]
        edge[:-1, :] |= seg[1:, :] != seg[:-1, :]
        item = QGraphicsPixmapItem(mask_pixmap(edge, (255, 255, 0, 170)))
        item.setScale(level.shape[1] / seg.shape[1])
        item.setZValue(50)
        self._boundary_item = self.canvas.add_preview(item)

    def _drop_boundaries(self) -> None:
        if self._boundary_item is not None and self._boundary_item.scene() is not None:
            self._boundary_item.scene().removeItem(self._boundary_item)
        self._boundary_item = None

    # -- SAM ------------------------------------------------------------------------------------------
    def load_sam(self, path: str | Path, *, overrides: tuple[str, ...] = ()) -> None:
        """Load a SAM 2 checkpoint in the background; embeddings start once it is there.

        `overrides` are Hydra overrides of the shipped config (for checkpoints of a changed config)."""
        path = Path(path)
        self._set_sam_state(f"loading {path.name}…")

        def work(job):
            import torch

            from engine.sam import SamModel
            return SamModel(path, device="cuda" if torch.cuda.is_available() else "cpu", overrides=overrides)

        def done(model):
            self.close_sam()
            self.sam = model
            self.last_checkpoint = path
            from app.core.smart.sam_prefetch import EmbeddingPrefetcher
            from engine.sam import EmbeddingCache
            cache = None
            if self.editor.project is not None:
                cache = EmbeddingCache(self.editor.project.folder / ".segassist" / "sam")
            self.prefetcher = EmbeddingPrefetcher(model, cache, on_ready=self._embedded.emit,
                                                  on_failed=self._embedFailed.emit)
            self._set_sam_state(f"{path.name} loaded")
            self._prefetch()

        def failed(msg):
            self._set_sam_state("none")
            self.message.emit(f"SAM could not be loaded: {msg}")

        self.sam_jobs.start("loading SAM", work, on_result=done, on_failed=failed)

    def close_sam(self) -> None:
        if self.prefetcher is not None:
            self.prefetcher.close()
        self.prefetcher, self.sam = None, None

    def shutdown(self) -> None:
        """Stop the background work (quit)."""
        self.sp_jobs.cancel_all()
        self.sam_jobs.wait(10000)
        self.decode_jobs.wait(10000)
        self.sp_jobs.wait(10000)
        self.close_sam()

    def _prefetch(self) -> None:
        if self.prefetcher is None:
            return
        ed = self.editor
        if ed.doc is None or ed.project is None or ed.index is None:
            self.prefetcher.cancel()
            return
        from engine.images import read_image

        doc = ed.doc
        items = [(ed.entry.name, lambda: doc.image)]
        for entry in ed.project.images[ed.index + 1:ed.index + 1 + PREFETCH_NEXT]:
            if entry.error is None:
                items.append((entry.name, lambda p=entry.path: read_image(p)))
        self.prefetcher.request(items)
        if self.prefetcher.get(ed.entry.name) is None:
            self._set_sam_state(f"SAM: embedding {ed.entry.name}…")
        else:
            self._set_sam_state("SAM ready")

    def _on_embedded(self, name: str, emb) -> None:
        if self.editor.entry is not None and self.editor.entry.name == name:
            self._set_sam_state("SAM ready")

    def _set_sam_state(self, text: str) -> None:
        self.sam_state = text
        self.samChanged.emit(text)

    def current_embedding(self):
        """The open image's SAM embedding when it is ready, else None."""
        entry = self.editor.entry
        if self.prefetcher is None or entry is None:
            return None
        return self.prefetcher.get(entry.name)

    def embedding(self):
        """The open image's SAM embedding when it is ready, else None (with a message saying why)."""
        if self.sam is None:
            self.message.emit(LOAD_SAM)
            return None
        emb = self.current_embedding()
        if emb is None:
            self.message.emit(SAM_EMBEDDING)
        return emb

    def decode(self, work, on_result, on_failed) -> None:
        """Run SAM's decoder (`work()`) on `decode_jobs`: one click at a time, off the GUI thread."""
        self.decode_jobs.start("SAM", lambda job: work(), on_result=on_result, on_failed=on_failed)

    def refine_uncertain(self) -> bool:
        """Replace the proposal where the model is unsure with SAM's masks prompted from it (undo: segment again)."""
        doc = self.editor.doc
        if doc is None or doc.proposal is None or doc.entropy is None:
            self.message.emit("Refining needs a proposal with its entropy: segment the image first (Ctrl+R)")
            return False
        emb = self.embedding()
        if emb is None:
            return False
        refined = sam_prompts.refine_uncertain(self.sam, emb, doc.proposal, doc.entropy)
        changed = int((refined != doc.proposal).sum())
        doc.set_proposal(refined, doc.confidence, doc.entropy)
        self.message.emit(f"SAM refined {changed} uncertain proposal pixels; accept them like any proposal")
        return True

    # -- clean-up -------------------------------------------------------------------------------------
    def preview_cleanup(self, operation):
        """The change `operation` would make to the open image (guarded), or None."""
        doc = self.editor.doc
        if doc is None:
            return None
        return cleanup.change(doc.labels, operation(doc.labels), self.guard)

    def apply_cleanup(self, operation, *, all_images: bool = False) -> int:
        """Clean the open image (one undo step) and, with `all_images`, every other labelled image; pixels changed."""
        ed = self.editor
        total = 0
        ch = self.preview_cleanup(operation)
        if ch is not None:
            cleanup.apply_change(ed.doc, ch)
            total += ch.count
        if all_images and ed.project is not None:
            others = [e for e in ed.project.images if e is not ed.entry]
            for _entry, n in cleanup.clean_images(ed.project, others, operation, self.guard):
                total += n
        self.message.emit(f"Clean-up changed {total} pixels")
        return total
