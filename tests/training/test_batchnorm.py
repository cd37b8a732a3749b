"""BatchNorm statistics re-estimated on whole training images before validation and saving."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import engine
from engine.preprocessing import preprocess
from training import train
from training.batchnorm import recalibrate_batchnorm, view_batches
from training.data import Sample
from training.distributed import Runtime

from .conftest import TINY_OPTIONS, tiny_config, write_shapes

CPU = Runtime(torch.device("cpu"), "fp32")
MEAN = torch.tensor([123.675, 116.28, 103.53])
STD = torch.tensor([58.395, 57.12, 57.375])


def samples(sizes, seed=0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    out = []
    for i, (h, w) in enumerate(sizes):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        image[: h // 2] //= 3  # some structure: a dark top half
        out.append(Sample(Path(f"{i}.png"), Path(f"{i}.png"), np.zeros((h, w), np.uint8), image=image))
    return out


def tiny_model() -> engine.SegModel:
    torch.manual_seed(0)
    model = engine.create_model("deeplabv3plus", 3, backbone="test_resnet", **TINY_OPTIONS)
    model.train()
    return model


def norms(model):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def test_statistics_are_those_of_the_whole_images_in_a_training_mode_forward():
    data = samples([(40, 56)] * 5)
    model = tiny_model()
    # Reference: one forward of all five images as one batch, BatchNorm in training mode, each layer's input
    # taken directly; its mean and (unbiased) variance per channel.
    inputs = {}
    hooks = [m.register_forward_pre_hook(lambda m, a: inputs.__setitem__(m, a[0].detach().double()))
             for m in norms(model)]
    with torch.no_grad():
        model(preprocess(torch.from_numpy(np.stack([s.image for s in data])), MEAN, STD))
    for h in hooks:
        h.remove()
    for m in norms(model):  # statistics far from the truth, as after training on other views
        m.running_mean.add_(3.0)
        m.running_var.mul_(7.0)
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k}

    used = recalibrate_batchnorm(model, data, CPU, MEAN, STD, window=32, batch_size=8)

    assert used == 5
    reached = [m for m in norms(model) if m in inputs]
    assert len(reached) >= 10 and len(reached) < len(norms(model))  # the auxiliary head is not reached
    for m in reached:
        x = inputs[m].transpose(0, 1).flatten(1)
        torch.testing.assert_close(m.running_mean, x.mean(1).float(), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(m.running_var, x.var(1).float(), rtol=1e-4, atol=1e-4)
    for k, v in model.state_dict().items():  # weights and counters as they were, modes restored
        if k in weights:
            assert torch.equal(v, weights[k]), k
    assert all(m.training for m in model.modules())


def test_frozen_and_unreached_layers_keep_their_statistics_and_one_image_changes_nothing():
    model = tiny_model()
    model.backbone.eval()  # a frozen backbone
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert recalibrate_batchnorm(model, samples([(40, 40)] * 3), CPU, MEAN, STD, 32, 2) == 3
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("decode_head.") and "running" in k for k in changed), changed
    assert not model.backbone.training and model.decode_head.training

    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert recalibrate_batchnorm(model, samples([(40, 40)]), CPU, MEAN, STD, 32, 2) == 0
    assert recalibrate_batchnorm(model, samples([(40, 40)] * 3), CPU, MEAN, STD, 32, 2, limit=0) == 0
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_views_batch_similar_sizes_centre_cropped_never_one_alone():
    data = samples([(30, 50), (40, 60), (40, 50), (200, 300), (33, 51)])
    batches = list(view_batches(data, batch_size=2, max_side=64, limit=64, seed=0))
    assert sum(len(b) for b in batches) == 5 and all(len(b) >= 2 for b in batches)
    for b in batches:
        assert b.dtype == np.uint8 and b.shape[1] <= 64 and b.shape[2] <= 64
    # Every view is the centre of its image.
    views = [v for b in batches for v in b]
    for s in data:
        h, w = s.image.shape[:2]
        found = [v for v in views if v.shape[0] <= h and v.shape[1] <= w and np.array_equal(
            v, s.image[(h - v.shape[0]) // 2:(h - v.shape[0]) // 2 + v.shape[0],
                       (w - v.shape[1]) // 2:(w - v.shape[1]) // 2 + v.shape[1]])]
        assert found, (h, w)
    assert len(list(view_batches(data, 2, 64, limit=3, seed=0))) == 1  # three images: one batch of three
    # A pixel budget splits batches, never below two views.
    small = samples([(40, 40)] * 7)
    assert [len(b) for b in view_batches(small, 8, 64, 64, 0)] == [7]
    assert [len(b) for b in view_batches(small, 8, 64, 64, 0, max_pixels=3 * 1600)] == [3, 4]
    assert [len(b) for b in view_batches(small, 8, 64, 64, 0, max_pixels=100)] == [2, 2, 3]


def test_the_written_model_carries_statistics_of_whole_images(tmp_path):
    images, labels = write_shapes(tmp_path / "data", 6, 48, seed=3)
    out = {}
    for bn_images in (0, 64):
        cfg = tiny_config(images, labels, tmp_path / f"m{bn_images}.safetensors", bn_images=bn_images)
        out[bn_images] = engine.load_model(train(cfg).model_path).model
    trained = out[0]  # the same weights: re-estimating touches statistics only
    for (k, a), b in zip(trained.state_dict().items(), out[64].state_dict().values(), strict=True):
        assert torch.equal(a, b) == ("running_" not in k or k.startswith("auxiliary_head.")), k
    loaded = engine.load_model(tmp_path / "m0.safetensors")
    reference = loaded.model.train()
    mean, std = (torch.tensor(v) for v in loaded.normalization)
    data = [Sample(p, p, engine.read_label(labels / p.name), image=engine.read_image(p))
            for p in engine.list_images(images)]
    recalibrate_batchnorm(reference, data, CPU, mean, std, 32, 2)
    for (k, a), b in zip(reference.state_dict().items(), out[64].state_dict().values(), strict=True):
        if "running_" in k:
            torch.testing.assert_close(a, b, msg=k)


def test_negative_bn_images_is_refused(tmp_path):
    with pytest.raises(ValueError, match="bn_images must be >= 0"):
        tiny_config(tmp_path, tmp_path, tmp_path / "m.safetensors", bn_images=-1)
