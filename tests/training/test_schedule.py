"""Learning-rate schedule and parameter groups."""

import pytest
import torch

from engine import create_model
from training.schedule import build_optimizer, family, lr_factor, recipe

from .conftest import TINY_OPTIONS, tiny_config


def test_poly_decay_per_iteration_with_floor(tmp_path):
    r = recipe(tiny_config(tmp_path, tmp_path, tmp_path / "m.safetensors", iterations=100), "deeplabv3plus")
    assert (r.lr, r.momentum, r.weight_decay, r.head_lr_mult, r.warmup_iters) == (0.01, 0.9, 5e-4, 1.0, 0)
    assert lr_factor(0, 100, r) == 1.0
    assert lr_factor(50, 100, r) == pytest.approx(0.99 * 0.5**0.9 + 0.01)
    assert lr_factor(99, 100, r) == pytest.approx(0.99 * 0.01**0.9 + 0.01)
    factors = [lr_factor(i, 100, r) for i in range(100)]
    assert factors == sorted(factors, reverse=True)


def test_vit_families_get_the_papers_settings(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path, tmp_path / "m.safetensors", iterations=200)
    assert family("setr_mla") == "setr" and family("segmenter_mask") == "segmenter" and family("ccnet") == "cnn"
    setr = recipe(cfg, "setr_naive")
    assert (setr.lr, setr.weight_decay, setr.head_lr_mult, setr.warmup_iters) == (0.01, 0.0, 10.0, 20)
    assert recipe(cfg, "setr_pup").lr == 0.001
    seg = recipe(cfg, "segmenter_linear")
    assert (seg.lr, seg.weight_decay, seg.head_lr_mult) == (0.001, 0.0, 1.0)
    def poly(i):
        return 0.99 * (1 - i / 200) ** 0.9 + 0.01

    for i in (0, 9, 19):  # linear warm-up over the first tenth
        assert lr_factor(i, 200, setr) == pytest.approx(poly(i) * (i + 1) / 20)
    assert lr_factor(20, 200, setr) == pytest.approx(poly(20))

def test_backbone_and_head_groups(tmp_path):
    model = create_model("deeplabv3plus", 3, backbone="test_resnet", **TINY_OPTIONS)
    cfg = tiny_config(tmp_path, tmp_path, tmp_path / "m.safetensors", head_lr_mult=10.0, lr=0.02)
    opt = build_optimizer(model, recipe(cfg, model.arch))
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["backbone"]["lr"] == 0.02 and groups["head"]["lr"] == pytest.approx(0.2)
    assert {id(p) for p in groups["backbone"]["params"]} == {id(p) for p in model.backbone.parameters()}
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9

    model.backbone.requires_grad_(False)
    adamw = build_optimizer(model, recipe(tiny_config(tmp_path, tmp_path, tmp_path / "m", optimizer="adamw"),
                                          model.arch))
    assert {g["name"] for g in adamw.param_groups} == {"head", "head.no_decay"}
    assert all(p.ndim > 1 for p in next(g for g in adamw.param_groups if g["name"] == "head")["params"])
