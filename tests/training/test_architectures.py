"""Every registered architecture trains through the same loop and fine-tunes with an added class."""

import pytest
import torch

import engine
from tests.engine.tiny import TINY
from training import train
from training.finetune import initial_model
from training.losses import segmentation_loss
from training.schedule import build_optimizer, recipe

from .conftest import CLASSES, tiny_config

ARCHS = engine.list_architectures()


def tiny_options(arch):
    options = dict(TINY[arch])
    return options.pop("backbone"), options


@pytest.mark.parametrize("arch", ARCHS)
def test_one_training_step_reaches_every_parameter(arch, tmp_path):
    backbone, options = tiny_options(arch)
    torch.manual_seed(0)
    model = engine.create_model(arch, 3, backbone=backbone, **options).train()
    labels = torch.randint(0, 3, (2, 32, 32))
    labels[:, :8] = 255
    outputs = model.forward_train(torch.randn(2, 3, 32, 32))
    loss, terms = segmentation_loss(outputs, labels)
    assert torch.isfinite(loss) and set(terms) == set(outputs)
    loss.backward()
    unreached = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unreached
    cfg = tiny_config(tmp_path, tmp_path, tmp_path / "m", arch=arch)
    groups = {g["name"]: g for g in build_optimizer(model, recipe(cfg, arch)).param_groups}
    head_lr = groups["head"]["lr"] / groups["backbone"]["lr"]
    assert head_lr == (10.0 if arch.startswith("setr") else 1.0)


@pytest.mark.parametrize("arch", ARCHS)
def test_fine_tune_adds_a_class_to_any_architecture(arch, tmp_path):
    backbone, options = tiny_options(arch)
    torch.manual_seed(0)
    parent = engine.save_model(tmp_path / "p.safetensors",
                               engine.create_model(arch, 3, backbone=backbone, **options), classes=CLASSES)
    old = engine.load_model(parent).model.state_dict()
    start = initial_model(tiny_config(tmp_path, tmp_path, tmp_path / "o", arch=None, backbone=None, model_options={},
                                      init=parent, classes=(*CLASSES, "new")))
    new = start.model.state_dict()
    grown = [k for k in new if new[k].shape != old[k].shape]
    assert grown  # at least the classifier
    for k, v in new.items():
        if k in grown:
            dim = next(d for d in range(v.dim()) if v.shape[d] != old[k].shape[d])
            assert v.shape[dim] == 4 and torch.equal(v.narrow(dim, 0, 3), old[k]), k
        else:
            assert torch.equal(v, old[k]), k


@pytest.mark.parametrize("arch", ["encnet", "setr_mla", "segmenter_mask"])
def test_short_run_writes_a_loadable_model(arch, shapes, tmp_path):
    backbone, options = tiny_options(arch)
    result = train(tiny_config(*shapes, tmp_path / "m.safetensors", arch=arch, backbone=backbone,
                               model_options=options, iterations=2, val_images=shapes[0], val_labels=shapes[1]))
    loaded = engine.load_model(result.model_path)
    assert loaded.model.arch == arch and result.last_miou is not None
