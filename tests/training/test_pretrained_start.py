"""A new model trained from timm's ImageNet weights (found offline in the hub cache) records them, and so do
the models fine-tuned from it."""

import torch

import engine
from tests.hub_cache import place_weights, random_weights
from tests.training.conftest import tiny_config
from training import train
from training.finetune import initial_model


def test_training_from_imagenet_weights_records_them_through_fine_tuning(hub_cache, shapes, tmp_path):
    state = random_weights("test_resnet", seed=7)
    place_weights(hub_cache, "test_resnet", state)
    images, labels = shapes
    cfg = tiny_config(images, labels, tmp_path / "v1.safetensors", pretrained=True, iterations=2, bn_images=0)
    start = initial_model(cfg)  # the run's initial backbone is timm's file, not random
    for key, value in start.model.backbone.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0, msg=key)
    train(cfg)
    assert engine.read_model_metadata(cfg.out)["backbone_weights"] == "timm:test_resnet@r160_in1k"
    # Fine-tuning with one more class (the classifier is rebuilt) keeps the record of the backbone's origin.
    tuned = tiny_config(images, labels, tmp_path / "v2.safetensors", init=cfg.out, arch=None, backbone=None,
                        model_options={}, classes=("background", "disk", "box", "new"), iterations=2, bn_images=0)
    train(tuned)
    assert engine.read_model_metadata(tuned.out)["backbone_weights"] == "timm:test_resnet@r160_in1k"
