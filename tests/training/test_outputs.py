"""The names of a training run's files beside its model, and finding what an interrupted run left."""

from pathlib import Path

from training import outputs
from training.config import TrainConfig


def test_a_runs_files_are_named_after_its_output(tmp_path):
    out = tmp_path / "models" / "deeplabv3plus-v2.safetensors"
    assert outputs.checkpoint_dir(out) == tmp_path / "models" / "deeplabv3plus-v2.safetensors.ckpt"
    assert outputs.best_path(out) == tmp_path / "models" / "deeplabv3plus-v2.best.safetensors"
    assert outputs.best_path(Path("m")) == Path("m.best.safetensors")
    cfg = TrainConfig(images=tmp_path, labels=tmp_path, out=out, classes=("a",))
    assert (cfg.checkpoint_dir, cfg.best_path) == (outputs.checkpoint_dir(out), outputs.best_path(out))


def test_the_files_of_runs_are_found_by_those_names_and_removed(tmp_path):
    runs = [tmp_path / "a-v1.safetensors", tmp_path / "b-v1.safetensors"]
    for out in runs:
        outputs.checkpoint_dir(out).mkdir()
        outputs.best_path(out).write_bytes(b"best")
    runs[0].write_bytes(b"model")
    (tmp_path / "c.ckpt").write_bytes(b"a file, not a run's folder")
    assert outputs.checkpoint_dirs(tmp_path) == [outputs.checkpoint_dir(out) for out in runs]
    assert outputs.best_models(tmp_path) == [(outputs.best_path(out), out) for out in runs]
    outputs.remove_outputs(runs[0])
    assert not runs[0].exists() and not outputs.best_path(runs[0]).exists()
    assert not outputs.checkpoint_dir(runs[0]).exists() and outputs.checkpoint_dir(runs[1]).is_dir()
