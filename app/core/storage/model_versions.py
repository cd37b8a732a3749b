"""A project's model versions: one entry per model file, as `segassist.json` lists them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass
class ModelVersion:
    """One model file of the project's history."""

    path: Path
    name: str
    created: str
    arch: str
    backbone: str
    miou: float | None = None
    parent: str | None = None
    val_images: int | None = None  # how many validation images `miou` was measured on

    def to_json(self, folder: Path) -> dict:
        return {"path": relative(self.path, folder), "name": self.name, "created": self.created, "arch": self.arch,
                "backbone": self.backbone, "miou": self.miou, "parent": self.parent, "val_images": self.val_images}


def model_version(path: Path, info: dict) -> ModelVersion:
    """The version of the model file `path`: what `info` gives (name, created, arch, backbone, miou, parent,
    val_images), the rest read from the file's metadata (only when arch or backbone are not given)."""
    meta = {}
    if not {"arch", "backbone"} <= info.keys():
        from engine.model_file import read_model_metadata  # torch loads only when a model is involved

        meta = read_model_metadata(path)
    config = meta.get("config", {})
    history = meta.get("history") or []
    last = history[-1] if history and isinstance(history[-1], dict) else {}
    return ModelVersion(
        path=path,
        name=info.get("name") or path.stem,
        created=info.get("created") or datetime.now(UTC).isoformat(timespec="seconds"),
        arch=info.get("arch") or str(config.get("name", "")),
        backbone=info.get("backbone") or str(config.get("backbone", "")),
        miou=info.get("miou", recorded_miou(last)),
        parent=info.get("parent", meta.get("parent")),
        val_images=info.get("val_images", last.get("val_images") if recorded_miou(last) is not None else None),
    )


def next_model_path(models_dir: Path, versions: list[ModelVersion], arch: str) -> Path:
    """A new file name under `models_dir` for a version of `arch` (`<arch>-v<N>.safetensors`)."""
    taken = {p.name for p in models_dir.glob("*")} | {m.path.name for m in versions}
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", arch) or "model"
    n = 1
    while f"{safe}-v{n}.safetensors" in taken:
        n += 1
    return models_dir / f"{safe}-v{n}.safetensors"


def recorded_miou(record: dict) -> float | None:
    """The score a training record gives its model: the written model's (`miou`), or for records of
    earlier versions the last validation's; never the best during the run (another model)."""
    if "miou" in record:
        return record["miou"]
    metrics = record.get("metrics")
    return metrics.get("miou") if isinstance(metrics, dict) else None


def model_from_json(folder: Path, m: dict) -> ModelVersion:
    """One entry of `segassist.json`'s `models`; ValueError or TypeError when it is not usable."""
    if not isinstance(m, dict) or not isinstance(m.get("path"), str):
        raise ValueError(f"a model entry needs a 'path': {m!r}")
    miou, count = m.get("miou"), m.get("val_images")
    return ModelVersion(folder / m["path"], str(m.get("name") or Path(m["path"]).stem), str(m.get("created", "")),
                        str(m.get("arch", "")), str(m.get("backbone", "")),
                        None if miou is None else float(miou), m.get("parent"), None if count is None else int(count))


def usable_model(m: object) -> bool:
    """Whether a `models` entry of a broken project file can be kept."""
    try:
        model_from_json(Path("."), m)
    except (ValueError, TypeError):
        return False
    return True


def relative(path: Path, folder: Path) -> str:
    """`path` as `segassist.json` writes it: relative to the project folder when inside it."""
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)
