"""Training data: image/label pairs found by file stem, checked up front, and served as augmented crops."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine import IGNORE_INDEX, ImageReadError, list_images, read_image, read_label
from training.augment import augment

# Decoded images are kept in memory up to this many bytes (in all); beyond it they are read per crop.
CACHE_BYTES = 2 << 30
MAX_ANCHORS = 20_000  # labelled pixel positions remembered per image, for crops when labels are sparse
MAX_LISTED = 12  # problems listed in one error message


class DataError(ValueError):
    """Training data that cannot be used; the message names each file and its problem."""


@dataclass
class Sample:
    """A labelled image: its files, its labels and (when cached) its pixels."""

    image_path: Path
    label_path: Path
    labels: np.ndarray
    image: np.ndarray | None = None
    anchors: np.ndarray | None = None  # flat indices of labelled pixels (a sample of them)
    corrected: np.ndarray | None = None  # flat indices of pixels the init model got wrong (a sample of them)

    @property
    def name(self) -> str:
        return self.image_path.stem

    def read_image(self) -> np.ndarray:
        return self.image if self.image is not None else read_image(self.image_path)


@dataclass
class DataSet:
    """The samples to train on and the number of images skipped (no label file, or nothing labelled)."""

    samples: list[Sample]
    skipped: int = 0
    notes: tuple[str, ...] = ()


def load_dataset(images: Path, labels: Path, num_classes: int, *, cache_bytes: int = CACHE_BYTES,
                 seed: int = 0) -> DataSet:
    """Pair `images/<stem>.*` with `labels/<stem>.png`, read and check every pair.

    Raises `DataError` listing every problem (unreadable files, a label whose size differs from its
    image, label values that are not classes, no labelled pixel anywhere). Images without a label file
    and labels with no labelled pixel are skipped and counted.
    """
    for folder, what in ((images, "images"), (labels, "labels")):
        if not Path(folder).is_dir():
            raise DataError(f"{folder}: the {what} folder does not exist")
    image_files = _by_stem(list_images(images))
    label_files = _by_stem(list_images(labels))
    problems: list[str] = []
    for files in (image_files, label_files):
        problems += [f"{', '.join(map(str, paths))}: several files share the name {stem!r}"
                     for stem, paths in files.items() if len(paths) > 1]
    if problems:
        raise DataError(_summary(problems))
    samples, notes = [], []
    skipped = sum(1 for stem in image_files if stem not in label_files)
    orphans = [label_files[s][0].name for s in label_files if s not in image_files]
    if orphans:
        notes.append(f"{labels}: {len(orphans)} label files without an image ignored ({', '.join(orphans[:5])})")
    rng = np.random.default_rng(seed)
    cached = 0
    for stem in sorted(image_files):
        if stem not in label_files:
            continue
        image_path, label_path = image_files[stem][0], label_files[stem][0]
        try:
            lab = np.array(read_label(label_path, num_classes))  # (writable: torch.from_numpy needs it)
            image = read_image(image_path)
        except ImageReadError as exc:
            problems.append(str(exc))
            continue
        if image.shape[:2] != lab.shape:
            problems.append(
                f"{label_path}: the label is {lab.shape[1]}x{lab.shape[0]} but its image {image_path.name} is "
                f"{image.shape[1]}x{image.shape[0]} (width x height)"
            )
            continue
        flat = np.flatnonzero(lab != IGNORE_INDEX)
        if flat.size == 0:
            skipped += 1
            notes.append(f"{label_path}: no labelled pixel; image skipped")
            continue
        if flat.size > MAX_ANCHORS:
            flat = np.sort(rng.choice(flat, MAX_ANCHORS, replace=False))
        keep = cached + image.nbytes <= cache_bytes
        cached += image.nbytes if keep else 0
        samples.append(Sample(image_path, label_path, lab, image if keep else None, flat))
    if problems:
        raise DataError(_summary(problems))
    if not samples:
        if label_files:
            raise DataError(f"{labels}: no labelled pixel in any of the {len(label_files)} label files "
                            f"(every pixel is 255, not labelled)")
        raise DataError(f"{labels}: no label file matches an image in {images} (labels are <image stem>.png)")
    return DataSet(samples, skipped, tuple(notes))


MIN_HELD_OUT = 2  # a validation set of one image is no measurement


def split_validation(samples: list[Sample], fraction: float) -> tuple[list[Sample], list[Sample]]:
    """Hold out about `fraction` of the samples for validation, chosen by a hash of the file name so the
    choice is stable as images are added: at least `MIN_HELD_OUT` images and at least one left to train on,
    else none (with fewer than three labelled images)."""
    count = min(len(samples) - 1, max(MIN_HELD_OUT, round(fraction * len(samples))))
    if fraction <= 0 or count < MIN_HELD_OUT:
        return samples, []
    ranked = sorted(samples, key=lambda s: hashlib.sha1(s.name.encode()).hexdigest())
    held = {id(s) for s in ranked[:count]}
    return [s for s in samples if id(s) not in held], [s for s in samples if id(s) in held]


def split_named(samples: list[Sample], names) -> tuple[list[Sample], list[Sample], list[str]]:
    """The samples named in `names` (image file names or stems) apart from the rest; also the names that
    match no labelled image. Raises `DataError` when nothing would be left to train on."""
    wanted = set(names)
    held = [s for s in samples if s.image_path.name in wanted or s.name in wanted]
    found = {s.image_path.name for s in held} | {s.name for s in held}
    missing = sorted(n for n in wanted if n not in found)
    held_ids = {id(s) for s in held}
    train = [s for s in samples if id(s) not in held_ids]
    if not train:
        raise DataError(f"all {len(samples)} labelled images are validation images (--val-names); "
                        "nothing is left to train on")
    return train, held, missing


class CropDataset(torch.utils.data.Dataset):
    """Augmented crops, indexed by `(sample index, augmentation seed)` so every crop is reproducible."""

    def __init__(self, samples: list[Sample], crop_size: int, scale_range: tuple[float, float],
                 correction_share: float = 0.0):
        self.samples, self.crop_size, self.scale_range = samples, crop_size, scale_range
        self.correction_share = correction_share

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: tuple[int, tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
        index, seed = key
        s = self.samples[index]
        rng = np.random.default_rng(seed)
        return augment(s.read_image(), s.labels, self.crop_size, self.scale_range, rng, s.anchors, s.corrected,
                       self.correction_share)


def collate(batch: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images `[B, H, W, 3]` and int64 labels `[B, H, W]`."""
    images = torch.from_numpy(np.stack([b[0] for b in batch]))
    labels = torch.from_numpy(np.stack([b[1] for b in batch]).astype(np.int64))
    return images, labels


def mark_corrections(samples: list[Sample], predict, names, *, limit: int = MAX_ANCHORS, seed: int = 0) -> int:
    """Set `corrected` on the samples named in `names`: the labelled pixels where `predict(image)` (the
    starting model's labels) differs from the label, up to `limit` of them. Returns how many samples have
    any; the others keep crops anywhere."""
    wanted = set(names)
    rng = np.random.default_rng(seed)
    marked = 0
    for s in samples:
        if not (s.name in wanted or s.image_path.name in wanted):
            continue
        predicted = predict(s.read_image())
        flat = np.flatnonzero((predicted != s.labels) & (s.labels != IGNORE_INDEX))
        if flat.size > limit:
            flat = np.sort(rng.choice(flat, limit, replace=False))
        s.corrected = flat if flat.size else None
        marked += flat.size > 0
    return marked


def focus_weights(samples: list[Sample], names, weight: float) -> list[float] | None:
    """Sampling weights: `weight` for the samples named in `names` (file names or stems), 1 for the others.

    None when nothing is in focus (every sample equally often)."""
    wanted = set(names)
    if not wanted or weight == 1:
        return None
    weights = [weight if (s.name in wanted or s.image_path.name in wanted) else 1.0 for s in samples]
    return weights if any(w != 1.0 for w in weights) else None


class IterationBatches(torch.utils.data.Sampler):
    """The batches of iterations `start..iterations-1` for one process, as lists of `CropDataset` keys.

    The data order is a function of (seed, iteration) alone: an endless sequence of shuffled epochs,
    `batch_size * world_size` positions per iteration, this process taking its share. Resuming at an
    iteration therefore continues the very same order, whatever the number of loader workers.

    With `weights`, sample `i` appears about `weights[i] / min(weights)` times per epoch (the whole part
    always, the fraction by chance), so over a run it is drawn in proportion to its weight, and every
    sample still at least once an epoch.
    """

    def __init__(self, num_samples: int, batch_size: int, iterations: int, seed: int, *, start: int = 0,
                 rank: int = 0, world_size: int = 1, weights=None):
        self.n, self.batch_size, self.iterations, self.seed = num_samples, batch_size, iterations, seed
        self.start, self.rank, self.world_size = start, rank, world_size
        self.weights = None
        if weights is not None:
            w = np.asarray(weights, np.float64)
            if w.shape != (num_samples,) or not (np.isfinite(w).all() and (w > 0).all()):
                raise ValueError(f"weights must be {num_samples} positive numbers, got {weights!r}")
            self.weights = None if (w == w.min()).all() else w / w.min()
        self._rewind()

    def __len__(self) -> int:
        return self.iterations - self.start

    def __iter__(self):
        for it in range(self.start, self.iterations):
            yield self.batch(it)

    def batch(self, iteration: int) -> list[tuple[int, tuple[int, ...]]]:
        first = (iteration * self.world_size + self.rank) * self.batch_size
        return [(self._index(p), (self.seed, iteration, self.rank, j))
                for j, p in enumerate(range(first, first + self.batch_size))]

    def _rewind(self) -> None:
        self._epoch, self._order, self._begin, self._end = -1, np.zeros(0, np.int64), 0, 0

    def _index(self, position: int) -> int:
        if position < self._begin:
            self._rewind()
        while position >= self._end:
            self._epoch += 1
            self._order = self._epoch_order(self._epoch)
            self._begin, self._end = self._end, self._end + len(self._order)
        return int(self._order[position - self._begin])

    def _epoch_order(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, epoch))
        if self.weights is None:
            return rng.permutation(self.n)
        whole = np.floor(self.weights)
        counts = whole.astype(np.int64) + (rng.random(self.n) < self.weights - whole)
        return rng.permutation(np.repeat(np.arange(self.n), counts))


def _by_stem(paths: list[Path]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for p in paths:
        out.setdefault(p.stem, []).append(p)
    return out


def _summary(problems: list[str]) -> str:
    head = problems[:MAX_LISTED]
    more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    return f"{len(problems)} problem(s) with the training data:\n  " + "\n  ".join(head) + more
