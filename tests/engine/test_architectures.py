"""One test body for every registered architecture."""

import pytest
import torch

import engine
from tests.engine.tiny import TINY, tiny_model

ARCHS = engine.list_architectures()

# What each architecture trains with: the papers' auxiliary heads (Segmenter has none), EncNet's SE logits.
TRAIN_OUTPUTS = {
    "deeplabv3plus": {"out", "aux"},
    "encnet": {"out", "aux", "se"},
    "ccnet": {"out", "aux"},
    "setr_naive": {"out", "aux0", "aux1", "aux2"},
    "setr_pup": {"out", "aux0", "aux1", "aux2", "aux3"},
    "setr_mla": {"out", "aux0", "aux1", "aux2", "aux3"},
    "segmenter_linear": {"out"},
    "segmenter_mask": {"out"},
}


def test_every_architecture_has_a_tiny_config():
    assert sorted(TINY) == ARCHS
    assert sorted(TRAIN_OUTPUTS) == ARCHS


@pytest.mark.parametrize("name", ARCHS)
def test_forward_at_odd_size_gives_logits_at_input_size(name):
    model = tiny_model(name, num_classes=5).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 97, 131))
    assert logits.shape == (2, 5, 97, 131)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ARCHS)
def test_forward_train_returns_out_and_auxiliary_outputs(name):
    model = tiny_model(name, num_classes=4).train()
    outs = model.forward_train(torch.randn(2, 3, 64, 80))
    assert set(outs) == TRAIN_OUTPUTS[name]
    for key, value in outs.items():
        if key == "se":
            assert value.shape == (2, 4)
        else:
            assert value.shape == (2, 4, 64, 80), key


def test_encnet_trains_with_se_logits():
    assert "se" in tiny_model("encnet").train().forward_train(torch.randn(2, 3, 48, 48))


@pytest.mark.parametrize("name", ARCHS)
def test_every_parameter_receives_a_gradient(name):
    model = tiny_model(name).train()
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():  # zero-initialised scales (CCNet's gamma) would block the gradient behind them
                p.fill_(0.5)
    outs = model.forward_train(torch.randn(2, 3, 64, 72))
    sum(v.float().square().mean() for v in outs.values()).backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent, f"no gradient reaches {silent}"


@pytest.mark.parametrize("name", ARCHS)
def test_config_rebuilds_an_equal_model(name):
    model = tiny_model(name).eval()
    assert model.config["name"] == name
    twin = engine.create_model(**model.config).eval()
    assert twin.config == model.config
    state = model.state_dict()
    assert {k: v.shape for k, v in twin.state_dict().items()} == {k: v.shape for k, v in state.items()}
    twin.load_state_dict(state)
    x = torch.randn(1, 3, 57, 61)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), model(x))


@pytest.mark.parametrize("name", ARCHS)
def test_models_state_their_normalisation(name):
    mean, std = tiny_model(name).normalization
    assert len(mean) == len(std) == 3
    assert all(0 < s <= 255 for s in std) and all(0 <= m <= 255 for m in mean)


@pytest.mark.parametrize("name", ARCHS)
def test_every_architecture_carries_its_facts(name):
    from engine.models.base import OptimizerDefaults
    from engine.registry import architecture_class

    cls = architecture_class(name)
    assert cls.family in ("cnn", "setr", "segmenter") and cls.encoder_family in ("cnn", "vit")
    assert cls.small_backbones and all(isinstance(b, str) for b in cls.small_backbones)
    assert isinstance(cls.optimizer_defaults, OptimizerDefaults) and cls.optimizer_defaults.sgd_lr > 0
    assert cls.test_config["backbone"].startswith("test_")
    model = engine.create_model(name, 2, **cls.test_config)
    kinds = {p.kind for p in model.probes()}
    assert kinds == {"cnn": set(), "vit": {"token_attention"}}[cls.encoder_family] | {
        "encnet": {"codewords"}, "ccnet": {"criss_cross"}}.get(name, set())


def test_a_new_architecture_is_one_class(monkeypatch, tmp_path):
    """A class with its facts is all that the registry, training's recipe and explain need."""
    from torch import nn

    from engine import registry
    from engine.layers import FCNHead
    from engine.models.cnn import CNNSegModel
    from training.config import TrainConfig
    from training.schedule import family, recipe

    monkeypatch.setattr(registry, "_ARCHITECTURES", dict(registry._ARCHITECTURES))

    @engine.register_architecture("fcn_test")
    class FCN(CNNSegModel):
        default_backbone = "resnet50c"
        test_config = dict(backbone="test_resnet")

        def __init__(self, num_classes, backbone, *, pretrained=False, output_stride: int = 8, aux: bool = False,
                     aux_channels: int = 8, dropout: float = 0.0):
            super().__init__(num_classes, backbone, pretrained=pretrained, output_stride=output_stride, aux=aux,
                             aux_channels=aux_channels, dropout=dropout)
            self.decode_head = FCNHead(self.spec.channels[self.spec.last], num_classes, 8, dropout=dropout)

        def decode(self, feats, train):
            return {"out": self.decode_head(feats[self.spec.last])}

    assert "fcn_test" in engine.list_architectures()
    model = engine.create_model("fcn_test", 3, **FCN.test_config).eval()
    assert isinstance(model.cam_layer(), nn.Conv2d)
    maps = engine.explain(model, torch.randn(1, 3, 40, 48), (5, 7))
    assert set(maps) == {"cam"} and maps["cam"].shape == (40, 48)
    cfg = TrainConfig(images=tmp_path, labels=tmp_path, out=tmp_path / "m.safetensors", classes=("a", "b", "c"))
    r = recipe(cfg, "fcn_test")
    assert family("fcn_test") == "cnn" and (r.lr, r.weight_decay, r.warmup_iters) == (0.01, 5e-4, 0)
