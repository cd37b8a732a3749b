"""The ViT encoder and the SETR / Segmenter heads beyond the shared architecture tests."""

import json

import pytest
import timm
import torch
import torch.nn.functional as F

import engine
from engine.models.setr import MLAModule
from engine.registry import architecture_class
from tests.engine.tiny import tiny_model

VIT_ARCHS = ["setr_naive", "setr_pup", "setr_mla", "segmenter_linear", "segmenter_mask"]


def timm_reference(model: engine.SegModel, size: tuple[int, int]) -> torch.nn.Module:
    """timm's own test_vit built for `size`, with the encoder's weights and its position embeddings resized
    bicubically (without antialiasing, as Segmenter does) by F.interpolate."""
    state = model.backbone.state_dict()
    pos = state["pos_embed"]
    grid = pos[:, 1:].reshape(1, 10, 10, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(size[0] // 16, size[1] // 16), mode="bicubic", align_corners=False)
    state["pos_embed"] = torch.cat([pos[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)
    ref = timm.create_model("test_vit", num_classes=0, img_size=size).eval()
    ref.load_state_dict(state)
    return ref


@pytest.mark.parametrize("size", [(160, 160), (224, 288)])
def test_segmenter_encoder_equals_timms_vit(size):
    # At the pretraining grid (10x10 patches) and above it.
    torch.manual_seed(0)
    model = tiny_model("segmenter_linear").eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        (feat,) = model.backbone(x)
        want = timm_reference(model, size).forward_features(x)[:, 1:]
    h, w = size[0] // 16, size[1] // 16
    assert feat.shape == (2, 64, h, w)
    torch.testing.assert_close(feat, want.transpose(1, 2).reshape(2, 64, h, w), rtol=1e-5, atol=1e-5)


def test_setr_resizes_position_embeddings_bilinearly_keeping_the_class_position():
    torch.manual_seed(0)
    enc = tiny_model("setr_naive").backbone
    pos = enc.pos_embed.detach()
    grid = pos[:, 1:].reshape(1, 10, 10, 64).permute(0, 3, 1, 2)
    want = F.interpolate(grid, size=(7, 13), mode="bilinear", align_corners=False).flatten(2).transpose(1, 2)
    with torch.no_grad():
        got = enc.position_embedding((7, 13))
    torch.testing.assert_close(got, torch.cat([pos[:, :1], want], dim=1))


def test_position_embeddings_are_cached_only_while_valid():
    enc = tiny_model("segmenter_linear").backbone
    with torch.no_grad():
        first = enc.position_embedding((5, 6))
        assert enc.position_embedding((5, 6)) is first
        assert enc.position_embedding((6, 5)) is not first
        enc.pos_embed.mul_(2.0)  # a new version of the parameter (an optimiser step, a loaded checkpoint)
        again = enc.position_embedding((5, 6))
    torch.testing.assert_close(again, 2 * first)
    # While autograd needs the graph, the embedding is computed afresh and gradients reach pos_embed.
    with torch.enable_grad():
        live = enc.position_embedding((5, 6))
        assert live.requires_grad
        live.sum().backward()
    assert enc.pos_embed.grad is not None and enc.pos_embed.grad.abs().sum() > 0


def test_input_is_padded_to_the_patch_size_and_the_logits_cropped():
    torch.manual_seed(0)
    model = tiny_model("setr_pup").eval()
    x = torch.randn(1, 3, 50, 70)
    with torch.no_grad():
        got = model(x)
        padded = model(F.pad(x, (0, 10, 0, 14)))  # to 64x80, multiples of 16
    torch.testing.assert_close(got, padded[..., :50, :70])


def test_segmenter_mask_logits_are_layer_normalised_over_classes():
    torch.manual_seed(0)
    model = tiny_model("segmenter_mask", num_classes=6).eval()
    with torch.no_grad():
        masks = model.decode_head(model.backbone(torch.randn(1, 3, 64, 48))[-1])
    assert masks.shape == (1, 6, 4, 3)
    # mask_norm starts at weight 1, bias 0: every patch's class scores have mean 0 and variance 1.
    torch.testing.assert_close(masks.mean(dim=1), torch.zeros(1, 4, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(masks.var(dim=1, unbiased=False), torch.ones(1, 4, 3), atol=0.02, rtol=0)  # eps


def test_mla_sums_top_down_from_the_deepest_level():
    torch.manual_seed(0)
    mla = MLAModule(8, 4, 4).eval()
    feats = [torch.randn(1, 8, 3, 3) for _ in range(4)]
    with torch.no_grad():
        got = mla(feats)
        p = [proj(x) for proj, x in zip(mla.channel_proj, feats, strict=True)]
        sums = [p[3], p[3] + p[2], p[3] + p[2] + p[1], p[3] + p[2] + p[1] + p[0]]
        for out, conv, s in zip(got, mla.feat_extract, sums, strict=True):
            torch.testing.assert_close(out, conv(s))


def test_mla_drops_the_class_token_and_unused_blocks():
    model = tiny_model("setr_mla", mla_indices=(0, 1, 2, 3))
    names = {n for n, _ in model.named_parameters()}
    assert "backbone.cls_token" not in names
    assert len(model.backbone.blocks) == 4 and model.backbone.prefix_tokens == 0


@pytest.mark.parametrize(
    "name, keys",
    [
        ("setr_naive", ["backbone.patch_embed.proj.weight", "backbone.blocks.5.attn.qkv.weight", "backbone.cls_token",
                        "backbone.pos_embed", "decode_head.norm.weight", "decode_head.up_convs.0.0.conv.weight",
                        "decode_head.up_convs.0.0.bn.weight", "decode_head.conv_seg.weight",
                        "auxiliary_head.2.up_convs.0.0.conv.weight"]),
        ("setr_pup", ["decode_head.up_convs.3.0.conv.weight", "auxiliary_head.3.norm.bias"]),
        ("setr_mla", ["neck.norm.3.weight", "neck.mla.channel_proj.0.conv.weight", "neck.mla.feat_extract.3.bn.bias",
                      "decode_head.up_convs.0.0.conv.weight", "decode_head.up_convs.3.1.bn.running_var",
                      "decode_head.conv_seg.weight", "auxiliary_head.3.conv_seg.weight"]),
        ("segmenter_linear", ["backbone.norm.weight", "decode_head.conv_seg.weight"]),
        ("segmenter_mask", ["backbone.norm.weight", "decode_head.dec_proj.weight", "decode_head.cls_emb",
                            "decode_head.layers.1.attn.qkv.weight", "decode_head.decoder_norm.weight",
                            "decode_head.patch_proj.weight", "decode_head.classes_proj.weight",
                            "decode_head.mask_norm.weight"]),
    ],
)
def test_parameter_names_follow_timm_and_mmsegmentation(name, keys):
    state = tiny_model(name).state_dict()
    assert [k for k in keys if k not in state] == []
    assert not any(k.startswith("backbone.head") or k.startswith("backbone.fc_norm") for k in state)
    if name.startswith("setr"):
        assert "backbone.norm.weight" not in state, "SETR's heads normalise the block outputs themselves"


def test_setr_naive_convs_are_1x1_and_pup_convs_3x3():
    assert tiny_model("setr_naive").decode_head.up_convs[0][0].conv.kernel_size == (1, 1)
    assert tiny_model("setr_pup").decode_head.up_convs[3][0].conv.kernel_size == (3, 3)


def test_config_survives_json_and_rebuilds():
    model = tiny_model("setr_naive")
    config = json.loads(json.dumps(model.config))
    assert config["aux_indices"] == [2, 3, 4]
    twin = engine.create_model(**config)
    assert twin.backbone.out_indices == model.backbone.out_indices


@pytest.mark.parametrize(
    "name, options, problem",
    [
        ("setr_naive", {"aux_indices": (9, 14, 19)},
         r"aux_indices=\(9, 14, 19\) does not fit backbone 'test_vit' with 6 blocks.*0\.\.5"
         r".*aux_indices=\(2, 3, 4\) here"),
        ("setr_pup", {"aux_indices": (1, 6)}, r"aux_indices=\(1, 6\) does not fit.*6 blocks"),
        ("setr_mla", {"mla_indices": (-1, 2, 3, 4)}, r"mla_indices=\(-1, 2, 3, 4\) must be .*layer indices 0\.\."),
        ("setr_mla", {"mla_indices": (1, 2, 3, 7)}, r"mla_indices=\(1, 2, 3, 7\) does not fit.*6 blocks"),
        ("setr_mla", {"mla_indices": (2, 3, 4)}, r"mla_indices must name 4 blocks"),
        ("setr_naive", {"aux_indices": (2, 2, 3)}, "distinct"),
    ],
)
def test_layer_indices_are_checked_against_the_encoder_depth(name, options, problem):
    with pytest.raises(ValueError, match=problem):
        engine.create_model(name, 3, backbone="test_vit", **options)


def test_default_layer_indices_are_the_papers_scaled_to_the_depth():
    assert engine.create_model("setr_naive", 3, backbone="test_vit").aux_indices == (2, 3, 4)
    assert engine.create_model("setr_pup", 3, backbone="test_vit").aux_indices == (2, 3, 4, 5)
    assert engine.create_model("setr_mla", 3, backbone="test_vit").backbone.out_indices == (1, 2, 4, 5)
    with torch.device("meta"):
        assert engine.create_model("setr_naive", 3).aux_indices == (9, 14, 19)  # ViT-L's 24 blocks: the paper's


@pytest.mark.parametrize("name", ["setr_naive", "segmenter_mask"])
def test_backbones_that_are_not_vision_transformers_are_refused(name):
    with pytest.raises(ValueError, match="'test_resnet' is not a timm VisionTransformer"):
        engine.create_model(name, 3, backbone="test_resnet")
    with pytest.raises(ValueError, match="unknown ViT backbone 'vit_gigantic'"):
        engine.create_model(name, 3, backbone="vit_gigantic")


def test_vit_defaults_are_the_papers_encoders():
    assert architecture_class("setr_pup").default_backbone == "vit_large_patch16_384"
    assert architecture_class("segmenter_mask").default_backbone == "vit_base_patch16_384"


@pytest.mark.parametrize("backbone", ["test_vit2", "test_vit3"])
def test_encoders_with_register_tokens_and_other_pooling_work(backbone):
    # No class token but a register token; average or attention pooling (whose modules are dropped).
    model = engine.create_model("segmenter_linear", 3, backbone=backbone).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 40, 56)).shape == (1, 3, 40, 56)
    assert not any(k.startswith(("backbone.attn_pool", "backbone.fc_norm")) for k in model.state_dict())


def test_bf16_autocast_stays_close_to_fp32():
    torch.manual_seed(0)
    model = tiny_model("segmenter_mask").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert (low.float() - ref).abs().max() / ref.abs().max() < 0.1
