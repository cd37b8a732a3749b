"""The bundled sample project: synthetic shape scenes, a few of them labelled, ready for the whole loop.

    python -m resources.sample_project FOLDER [--seed 0]

Coloured shapes on textured backgrounds are a domain the app's default new model (DeepLabV3+ with
EfficientNet-Lite0 from its installed ImageNet weights) learns in minutes on a CPU, so a newcomer can train,
auto-segment the rest and correct it without any download. The same seed always writes the same bytes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.core.storage.project import Project
from engine.images import write_image, write_label
from resources.synthetic import make_scribbles, make_shapes

SAMPLE_CLASSES = ("background", "disk", "box", "triangle")


def make_sample_project(folder: str | Path, seed: int = 0, *, n: int = 36, size: int = 256, dense: int = 5,
                        scribbled: int = 2) -> Path:
    """Write a sample project into `folder` (created; it must not hold anything yet). Returns the folder.

    `n` images `scene_NN.png` of `size` pixels; the first `dense` have full labels (status "reviewed"),
    the next `scribbled` have scribbles only (status "edited"), the rest are for the model to propose.
    """
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder}: not empty; the sample project needs a new or empty folder")
    if dense + scribbled > n:
        raise ValueError(f"{dense} dense and {scribbled} scribbled labels for {n} images")
    folder.mkdir(parents=True, exist_ok=True)
    scenes = make_shapes(n, size, seed, classes=SAMPLE_CLASSES)
    digits = max(2, len(str(n - 1)))
    names = [f"scene_{i:0{digits}d}" for i in range(n)]
    for name, (image, _) in zip(names, scenes, strict=True):
        write_image(folder / f"{name}.png", image)
    project = Project.open(folder, classes=SAMPLE_CLASSES)
    for i, (name, (_, labels)) in enumerate(zip(names, scenes, strict=True)):
        if i < dense:
            status = "reviewed"
        elif i < dense + scribbled:
            labels, status = make_scribbles(labels, fraction=0.1, seed=seed * 1000 + i), "edited"
        else:
            continue
        write_label(project.labels_dir / f"{name}.png", labels, project.classes)
        project.entry(f"{name}.png").status = status
    project.settings["sample"] = {"seed": seed}
    project.save()
    project.close()
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write SegAssist's sample project into a new folder.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    folder = make_sample_project(args.folder, args.seed)
    print(f"sample project written to {folder}")


if __name__ == "__main__":
    main()
