"""The one list of backbones: what every architecture offers, and that each offered one builds and has
ImageNet weights (an installed package, or timm's on the hub)."""

import pytest
import torch

import engine
from engine.backbones import BACKBONES, backbone_family, backbones_for, quick_backbone
from engine.pretrained import pretrained_source
from engine.registry import architecture_class
from engine.weight_packages import bundled_weights

ARCHS = engine.list_architectures()
OFFERED = [b for b in BACKBONES if not b.test]
ONE_ARCH = {"cnn": "deeplabv3plus", "vit": "segmenter_linear"}


@pytest.mark.parametrize("arch", ARCHS)
def test_each_architecture_offers_its_paper_backbone_first_and_a_quick_one(arch):
    offered = backbones_for(arch)
    assert offered[0].name == architecture_class(arch).default_backbone
    assert {b.family for b in offered} == {backbone_family(arch)}
    assert quick_backbone(arch) in [b.name for b in offered]
    assert not any(b.test for b in offered)
    with_tests = backbones_for(arch, tests=True)
    assert [b for b in with_tests if b.test], "every family has a tiny test backbone for the tests"


def test_the_families_split_the_architectures_as_the_papers_do():
    assert {a: backbone_family(a) for a in ARCHS} == {
        "ccnet": "cnn", "deeplabv3plus": "cnn", "encnet": "cnn", "segmenter_linear": "vit", "segmenter_mask": "vit",
        "setr_mla": "vit", "setr_naive": "vit", "setr_pup": "vit"}


@pytest.mark.parametrize("backbone", OFFERED, ids=lambda b: b.name)
def test_every_offered_backbone_has_imagenet_weights_installed_or_in_timm(backbone):
    if bundled_weights(backbone.name) is not None:  # an installed package: no download at all
        return
    source = pretrained_source(backbone.name)  # timm's config only: no network
    assert source.hub_id.startswith("timm/") and source.tag
    assert source.origin == f"timm:{source.model}@{source.tag}"


def test_the_preselected_backbone_of_cnns_has_installed_imagenet_weights():
    for arch in ARCHS:
        if backbone_family(arch) == "cnn":
            assert quick_backbone(arch) == "efficientnet_lite0"
            assert bundled_weights(quick_backbone(arch)) is not None


@pytest.mark.parametrize("backbone", BACKBONES, ids=lambda b: b.name)
def test_every_listed_backbone_builds_in_its_family(backbone):
    with torch.device("meta"):
        model = engine.create_model(ONE_ARCH[backbone.family], 3, backbone=backbone.name)
    assert model.config["backbone"] == backbone.name
    assert model.backbone_weights == "random"


def test_recorded_origins_read_as_words():
    from engine.backbones import describe_origin

    assert describe_origin("random") == "random initialisation"
    assert describe_origin("timm:resnet18@a1_in1k") == "ImageNet (timm resnet18.a1_in1k)"
    assert describe_origin("file:r18.pth+sha256:" + "ab" * 32) == "file r18.pth (sha256 abababababab…)"
    assert describe_origin(None) == "not recorded"
