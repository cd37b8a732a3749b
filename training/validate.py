"""Validation: whole images through `engine.Predictor`, the inference the app's proposals use, scored over
labelled pixels.

The predictor is built on the model in memory with the app's default proposal settings (precision "auto"
on the run's device, the mean of each image and its mirror, whole images up to
`engine.predictor.AUTO_TILE_PIXELS` and blended windows beyond, batch norms folded, channels_last), so the
mIoU of a run is the mIoU of the proposals its model will make.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from engine import Predictor, SegModel
from engine.predictor import FLIP_ONLY
from training.data import Sample, mark_corrections
from training.distributed import Runtime, sum_all
from training.metrics import confusion_matrix, scores
from training.schedule import family

# The app's proposals: `app.services.model_service.make_predictor` with the Model panel's defaults
# (`app.core.storage.predictions.PROPOSAL_OPTIONS`; training does not import the app, a test keeps them equal).
PROPOSAL_PRECISION = "auto"
PROPOSAL_FLIP = True  # flip test-time augmentation
PROPOSAL_TILE = None
MIN_VAL_IMAGES = 2  # fewer validation images give no score: one image is not a measurement

WHOLE_IMAGE_LIMIT = 1024  # CNNs' BatchNorm re-estimation views: whole images up to this side (or twice the crop)


def whole_view_limit(model: SegModel, window: int) -> int:
    """The largest side of the whole views BatchNorm statistics are re-estimated on: 1024 (or twice `window`)
    for CNNs, `window` for ViT models, whose position embeddings were trained at the crop's patch grid."""
    return window if family(model.arch) != "cnn" else max(WHOLE_IMAGE_LIMIT, 2 * window)


def proposal_predictor(model: SegModel, device: torch.device) -> Predictor:
    """A predictor for `model` (in memory) as the app builds one for its proposals."""
    return Predictor(model, device=device, tile=PROPOSAL_TILE, precision=PROPOSAL_PRECISION, tta=PROPOSAL_FLIP,
                     **FLIP_ONLY)


def evaluate(model: SegModel, samples: Sequence[Sample], rt: Runtime) -> dict:
    """mIoU, per-class IoU, pixel accuracy and the confusion matrix over `samples` (shared out among the
    processes, the confusion matrices summed), and `image_errors`: each image's share of labelled pixels
    predicted wrong, by file name. With fewer than `MIN_VAL_IMAGES` samples the scores are None (and
    `image_errors` empty): not measurable. The model's training modes and tensors are as they were afterwards."""
    k = model.num_classes
    confusion = torch.zeros(k, k, dtype=torch.int64)
    per_image = torch.zeros(len(samples), 2, dtype=torch.int64)  # wrong, labelled pixels of each image
    if len(samples) >= MIN_VAL_IMAGES:
        with _restored(model):
            predictor = proposal_predictor(model, rt.device)
            for i in range(rt.rank, len(samples), rt.world_size):
                s = samples[i]
                predicted = torch.from_numpy(predictor.predict(s.read_image()).labels.astype("int64"))
                cm = confusion_matrix(predicted, torch.from_numpy(s.labels), k)
                confusion += cm
                per_image[i, 0], per_image[i, 1] = cm.sum() - cm.diagonal().sum(), cm.sum()
    confusion = sum_all(rt, confusion.to(rt.device)).cpu()
    per_image = sum_all(rt, per_image.to(rt.device)).cpu()
    if len(samples) < MIN_VAL_IMAGES:
        return {"miou": None, "pixel_accuracy": None, "per_class_iou": [None] * k, "confusion": confusion.tolist(),
                "image_errors": {}}
    errors = {s.image_path.name: (int(w) / int(n) if n else 0.0) for s, (w, n) in zip(samples, per_image.tolist(),
                                                                                       strict=True)}
    return {**scores(confusion), "confusion": confusion.tolist(), "image_errors": errors}


def mark_model_corrections(model: SegModel, samples: Sequence[Sample], names, rt: Runtime, seed: int = 0) -> int:
    """`training.data.mark_corrections` with `model`'s proposals (as the app made them for the person)."""
    with _restored(model):
        predictor = proposal_predictor(model, rt.device)
        return mark_corrections(samples, lambda image: predictor.predict(image).labels, names, seed=seed)


@contextlib.contextmanager
def _restored(model: SegModel) -> Iterator[None]:
    """Undo what building a predictor does to the model: eval mode, channels_last weights."""
    modes = {m: m.training for m in model.modules()}
    tensors = [(t, t.data) for t in [*model.parameters(), *model.buffers()]]
    try:
        yield
    finally:
        for m, mode in modes.items():
            m.training = mode
        for t, data in tensors:
            t.data = data
