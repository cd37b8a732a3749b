"""The active model and the work done with it, always on a worker thread.

`ModelService` holds the loaded model and its `engine.Predictor`. Loading, creating, importing,
predicting, explaining and exporting run as jobs on one worker thread (one model at a time in
memory, one call into it at a time); results come back as Qt signals on the GUI thread. A model that
fails to load leaves the previous one active.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

import engine
from app.core.storage.predictions import PROPOSAL_OPTIONS
from app.services.workers import Job, JobRunner
from engine.predictor import FLIP_ONLY

EXPLAIN_WINDOW = 1024  # explain a window of at most this side around the pixel on large images


@dataclass
class ActiveModel:
    """What the rest of the app needs to know about the model in use."""

    loaded: engine.LoadedModel
    predictor: object  # engine.Predictor
    path: Path | None
    options: dict = field(default_factory=dict)

    @property
    def classes(self) -> list:
        return list(self.loaded.classes)

    def info(self) -> dict:
        cfg = self.loaded.model.config
        from app.core.storage.model_versions import recorded_miou

        history = self.loaded.meta.get("history") or []
        last = history[-1] if history and isinstance(history[-1], dict) else None  # the run that made it
        miou = recorded_miou(last) if last else None
        p = self.predictor
        return {"name": self.path.stem if self.path else cfg.get("name"), "arch": cfg.get("name"),
                "backbone": cfg.get("backbone"), "backbone_weights": self.loaded.meta.get("backbone_weights"),
                "classes": len(self.loaded.classes), "miou": miou,
                "trained": last is not None, "val_images": last.get("val_images") if miou is not None else None,
                "device": str(getattr(p, "device", "")), "precision": getattr(p, "precision", ""),
                "backend": getattr(p, "backend", "")}


def make_predictor(loaded: engine.LoadedModel, options: dict):
    """An `engine.Predictor` for `loaded` with the panel's device/backend/precision/TTA choices."""
    tta = bool(options.get("tta"))
    backend = options.get("backend", "torch")
    precision = options.get("precision", "auto")
    if backend == "onnx":
        precision = "auto"
    return engine.Predictor(loaded, device=options.get("device", "auto"), backend=backend, precision=precision,
                            tta=tta, **FLIP_ONLY)


def normalized_tensor(image: np.ndarray, normalization) -> object:
    """uint8 RGB [H, W, 3] -> float tensor [1, 3, H, W] normalised with (mean, std) on 0-255."""
    from engine.preprocessing import preprocess

    mean, std = normalization
    return preprocess(image, mean, std)


def explain_window(shape: tuple[int, int], pixel: tuple[int, int],
                   side: int = EXPLAIN_WINDOW) -> tuple[int, int, int, int]:
    """The region (y0, x0, y1, x1) explained for `pixel`: the whole image, or a window of `side` around it."""
    h, w = shape
    y, x = pixel
    if h <= side and w <= side:
        return (0, 0, h, w)
    y0 = min(max(0, y - side // 2), max(0, h - side))
    x0 = min(max(0, x - side // 2), max(0, w - side))
    return (y0, x0, min(h, y0 + side), min(w, x0 + side))


class ModelService(QObject):
    """Owns the active model; every model call is a job on its worker thread."""

    changed = Signal(object)   # the new ActiveModel, or None when the model was put away (another project)
    failed = Signal(str)       # a model could not be loaded/created; the previous one stays
    busyChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.runner = JobRunner(1, self)
        self.runner.busyChanged.connect(self.busyChanged)
        self.active: ActiveModel | None = None
        self._abandoned: list[JobRunner] = []  # runners of jobs that were cancelled but never stopped
        self.options = dict(PROPOSAL_OPTIONS)

    @property
    def busy(self) -> bool:
        return self.runner.busy

    # -- which model ----------------------------------------------------------------------------------
    def load(self, path: str | Path, on_loaded: Callable[[ActiveModel], None] | None = None) -> Job:
        """Load a model file in the background; on failure `failed` fires and the active model stays."""
        path = Path(path).resolve()
        options = dict(self.options)

        def work(job: Job) -> ActiveModel:
            loaded = engine.load_model(path)
            return ActiveModel(loaded, make_predictor(loaded, options), path, options)

        return self.runner.start(f"loading {path.name}", work, on_result=lambda a: self._activate(a, on_loaded),
                                 on_failed=lambda msg: self.failed.emit(f"Could not load {path.name}: {msg}"))

    def create(self, arch: str, backbone: str | None, classes: list, path: Path, *, pretrained: bool | str = False,
               on_created: Callable[[ActiveModel], None] | None = None, **options) -> Job:
        """A new model (random heads; backbone weights from a local file when given), saved to `path`."""
        settings = dict(self.options)

        def work(job: Job) -> ActiveModel:
            model = engine.create_model(arch, len(classes), backbone=backbone or None, pretrained=pretrained,
                                        **options)
            engine.save_model(path, model, classes=classes, history=[])
            loaded = engine.load_model(path)
            return ActiveModel(loaded, make_predictor(loaded, settings), path, settings)

        return self.runner.start(f"creating {arch}", work, on_result=lambda a: self._activate(a, on_created),
                                 on_failed=lambda msg: self.failed.emit(f"Could not create the model: {msg}"))

    def import_mmseg(self, source: Path, path: Path, on_imported: Callable[[ActiveModel], None] | None = None) -> Job:
        """Convert an mmsegmentation checkpoint into a model file at `path` and make it active."""
        settings = dict(self.options)

        def work(job: Job) -> ActiveModel:
            importer = getattr(engine, "import_mmseg", None)
            if importer is None:
                raise RuntimeError("this version of the engine cannot import mmsegmentation checkpoints")
            loaded = importer(source)
            engine.save_model(path, loaded.model, classes=loaded.classes,
                              **{k: v for k, v in loaded.meta.items() if k not in ("config", "classes", "format",
                                                                                   "version")})
            loaded = engine.load_model(path)
            return ActiveModel(loaded, make_predictor(loaded, settings), path, settings)

        return self.runner.start(f"importing {source.name}", work,
                                 on_result=lambda a: self._activate(a, on_imported),
                                 on_failed=lambda msg: self.failed.emit(f"Could not import {source.name}: {msg}"))

    def set_options(self, options: dict) -> Job | None:
        """Device/backend/precision/TTA; rebuilds the predictor of the active model in the background."""
        self.options = {**self.options, **options}
        active = self.active
        if active is None:
            return None
        settings = dict(self.options)

        def work(job: Job) -> ActiveModel:
            return ActiveModel(active.loaded, make_predictor(active.loaded, settings), active.path, settings)

        return self.runner.start("switching device", work, on_result=self._activate,
                                 on_failed=lambda msg: self.failed.emit(f"Could not run the model that way: {msg}"))

    def clear(self) -> None:
        """Put the active model away (another project opens): every model job is cancelled, what they
        still send is dropped, and no model is active until the next one loads."""
        self.cancel()
        if self.active is not None:
            self.active = None
            self.changed.emit(None)

    def _activate(self, active: ActiveModel, then=None) -> None:
        self.active = active
        self.changed.emit(active)
        if then is not None:
            then(active)

    # -- using it -------------------------------------------------------------------------------------
    def predict_images(self, items: list[tuple[object, Callable[[], np.ndarray]]], *, on_each, after=None,
                       on_progress=None, on_done=None, on_failed=None, on_cancelled=None) -> Job | None:
        """Predict each `(key, read_image)` in turn. `after(key, prediction)` runs on the worker thread
        (caching it, say); `on_each((key, prediction or None, after's result, error or None))` arrives
        on the GUI thread per image. An image that cannot be read or predicted is reported and skipped;
        the run goes on."""
        if self.active is None:
            return None
        predictor = self.active.predictor
        total = len(items)

        def work(job: Job) -> int:
            done = 0
            for i, (key, read) in enumerate(items):
                job.check()
                job.progress(i, total, f"segmenting {i + 1} of {total}")
                try:
                    prediction = predictor.predict(read(), should_stop=job.should_stop)
                except Exception as exc:  # noqa: BLE001 - one bad image must not stop the rest
                    if job.should_stop():
                        raise
                    job.partial((key, None, None, str(exc)))
                    continue
                extra, error = None, None
                if after is not None:
                    try:
                        extra = after(key, prediction)
                    except Exception as exc:  # noqa: BLE001
                        error = str(exc)
                job.partial((key, prediction, extra, error))
                done += 1
            job.progress(total, total, "done")
            return done

        return self.runner.start("segmenting", work, on_partial=on_each, on_progress=on_progress, on_result=on_done,
                                 on_failed=on_failed, on_cancelled=on_cancelled)

    def explain(self, image: np.ndarray, pixel: tuple[int, int], *, on_result, on_failed=None) -> Job | None:
        """`engine.explain` maps for `pixel`, computed on a window around it; the result is
        `(maps: dict[str, ndarray], region)` with the maps covering `region` of the image."""
        if self.active is None:
            return None
        loaded = self.active.loaded
        predictor = self.active.predictor

        def work(job: Job):
            explain = getattr(engine, "explain", None)
            if explain is None:
                raise RuntimeError("this version of the engine has no explain()")
            import torch

            region = explain_window(image.shape[:2], pixel)
            y0, x0, y1, x1 = region
            crop = image[y0:y1, x0:x1]
            model = getattr(predictor, "model", None) or loaded.model
            device = next(model.parameters()).device
            x = normalized_tensor(crop, loaded.normalization).to(device)
            # Model jobs run one at a time on this runner's single thread, so the predictor is idle here.
            maps = explain(model, x, (pixel[0] - y0, pixel[1] - x0))
            out = {}
            for key, value in maps.items():
                arr = value.detach().float().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
                out[key] = arr.astype(np.float32, copy=False)
            return out, region

        return self.runner.start("explaining", work, on_result=on_result, on_failed=on_failed)

    def export_onnx(self, path: Path, *, on_result=None, on_failed=None) -> Job | None:
        if self.active is None:
            return None
        loaded = self.active.loaded

        def work(job: Job) -> Path:
            return engine.export_onnx(loaded, path)

        return self.runner.start("exporting ONNX", work, on_result=on_result, on_failed=on_failed)

    def cancel(self) -> None:
        """Cancel every model job. One that does not stop (a load or a forward pass cannot be interrupted)
        is abandoned: its result is dropped and later jobs run on a fresh worker thread at once."""
        self.runner.cancel_all()
        if self.runner.busy:
            self._abandoned.append(self.runner)
            self.runner.busyChanged.disconnect(self.busyChanged)
            self.runner = JobRunner(1, self)
            self.runner.busyChanged.connect(self.busyChanged)
            self.busyChanged.emit(False)

    def close(self, msecs: int = 5000) -> None:
        """On quit: cancel every model job and drop what any of them still sends. A run that checks for
        cancel (segmenting, between tiles) ends within the wait; one that does not is left behind (`stuck`)."""
        self.runner.close(msecs)
        for runner in self._abandoned:
            runner.close(0)

    @property
    def stuck(self) -> bool:
        """Whether an abandoned (or the current) model job is still running."""
        self._abandoned = [r for r in self._abandoned if r.busy]
        return bool(self._abandoned) or self.runner.busy
