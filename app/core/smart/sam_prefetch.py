"""SAM image embeddings computed in the background: the current image first, then the next ones.

Qt-free: one worker thread, a queue that each `request` replaces (switching image cancels what was
queued for the old one), the on-disk `EmbeddingCache` (keyed by image content and model), and a few
embeddings kept in memory. `on_ready(name, embedding)` is called on the worker thread; a GUI posts
it to its own thread.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from engine.sam import Embedding, EmbeddingCache, image_digest

log = logging.getLogger(__name__)

Loader = Callable[[], np.ndarray]


class EmbeddingPrefetcher:
    """Embeds the requested images one at a time on a worker thread, cache first.

    `request([(name, loader), ...])` names the images wanted now, in order (the current one first);
    whatever was queued and is not in the new list is dropped. An embedding being computed when it
    is dropped still reaches the disk cache, but is not reported.
    """

    def __init__(self, model, cache: EmbeddingCache | None, *, keep: int = 3,
                 on_ready: Callable[[str, Embedding], None] | None = None,
                 on_failed: Callable[[str, str], None] | None = None):
        self.model, self.cache, self.keep = model, cache, keep
        self.on_ready, self.on_failed = on_ready, on_failed
        self._memory: OrderedDict[str, Embedding] = OrderedDict()
        self._queue: list[tuple[str, Loader]] = []
        self._wanted: set[str] = set()
        self._lock = threading.Condition()
        self._closed = False
        self.running: str | None = None
        self.computed = 0  # embeddings the model computed (not from the cache)
        self.cache_hits = 0
        self._thread = threading.Thread(target=self._work, name="sam-embeddings", daemon=True)
        self._thread.start()

    def request(self, items: Sequence[tuple[str, Loader]]) -> None:
        """Want these images' embeddings, in this order; drop any other queued."""
        with self._lock:
            self._wanted = {name for name, _ in items}
            self._queue = [(n, f) for n, f in items if n not in self._memory and n != self.running]
            self._lock.notify_all()

    def cancel(self) -> None:
        """Drop everything queued (and the report of the one running)."""
        self.request([])

    def get(self, name: str) -> Embedding | None:
        """The embedding of `name` when it is ready, else None."""
        with self._lock:
            emb = self._memory.get(name)
            if emb is not None:
                self._memory.move_to_end(name)
            return emb

    def pending(self) -> list[str]:
        with self._lock:
            return [n for n, _ in self._queue]

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or running (tests, benchmarks); False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._queue and self.running is None, timeout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._queue = []
            self._lock.notify_all()
        self._thread.join(timeout=30)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    return
                name, loader = self._queue.pop(0)
                self.running = name
            try:
                emb = self._embed(loader)
            except Exception as exc:  # noqa: BLE001 - one bad image never stops the others
                log.warning("SAM embedding of %s failed: %s", name, exc)
                with self._lock:
                    self.running = None
                    wanted = name in self._wanted
                    self._lock.notify_all()
                if wanted and self.on_failed is not None:
                    self.on_failed(name, str(exc))
                continue
            with self._lock:
                self.running = None
                wanted = name in self._wanted
                if wanted:
                    self._memory[name] = emb
                    while len(self._memory) > self.keep:
                        self._memory.popitem(last=False)
                self._lock.notify_all()
            if wanted and self.on_ready is not None:
                self.on_ready(name, emb)

    def _embed(self, loader: Loader) -> Embedding:
        image = loader()
        key = image_digest(image)
        if self.cache is not None:
            emb = self.cache.get(self.model.key, key)
            if emb is not None and emb.image_hw == image.shape[:2]:
                self.cache_hits += 1
                return emb
        emb = self.model.embed(image)
        self.computed += 1
        if self.cache is not None:
            try:
                self.cache.put(self.model.key, key, emb)
            except OSError as exc:  # a full disk costs the cache, not the tool
                log.warning("cannot cache a SAM embedding: %s", exc)
        return emb
