"""The names of the files a training run writes beside its output model, in one place.

A run writing `<stem>.safetensors` keeps its resumable checkpoints in `<stem>.safetensors.ckpt/` and the
best model by validation mIoU in `<stem>.best.safetensors`. The training loop writes them by these names;
the app removes them after a run and finds what an interrupted run left by them.
"""

from __future__ import annotations

from pathlib import Path

CHECKPOINT_SUFFIX = ".ckpt"
BEST_TAG = ".best"
MODEL_SUFFIX = ".safetensors"


def checkpoint_dir(out: Path) -> Path:
    """Where the run writing `out` keeps resumable checkpoints: `<out>.ckpt/`."""
    out = Path(out)
    return out.with_name(out.name + CHECKPOINT_SUFFIX)


def best_path(out: Path) -> Path:
    """Where the run writing `out` keeps its best model by validation mIoU: `<stem>.best<suffix>`."""
    out = Path(out)
    return out.with_name(f"{out.stem}{BEST_TAG}{out.suffix or MODEL_SUFFIX}")


def checkpoint_dirs(folder: Path) -> list[Path]:
    """The checkpoint folders in `folder` (what runs that did not finish left there)."""
    return sorted(p for p in Path(folder).glob(f"*{CHECKPOINT_SUFFIX}") if p.is_dir())


def best_models(folder: Path) -> list[tuple[Path, Path]]:
    """The best-model files in `folder`, each with the output of the run that wrote it: `(best, out)`."""
    tail = BEST_TAG + MODEL_SUFFIX
    return [(best, best.with_name(best.name.removesuffix(tail) + MODEL_SUFFIX))
            for best in sorted(Path(folder).glob(f"*{tail}")) if best.is_file()]


def remove_outputs(out: Path) -> None:
    """Remove every file of the run writing `out`: the model, its best model and its checkpoints."""
    import shutil

    Path(out).unlink(missing_ok=True)
    best_path(out).unlink(missing_ok=True)
    shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
