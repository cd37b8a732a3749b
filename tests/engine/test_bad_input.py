import pytest
import torch

import engine
from tests.engine.tiny import tiny_model


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown architecture 'unet'.*deeplabv3plus"):
        engine.create_model("unet", 3)


def test_unknown_backbone_says_what_is_accepted():
    with pytest.raises(ValueError, match="unknown CNN backbone 'resnet9000'.*resnet50c"):
        engine.create_model("deeplabv3plus", 3, backbone="resnet9000")


def test_backbone_without_dilation_support_is_refused():
    with pytest.raises(ValueError, match="'test_vit' cannot serve as a dilated feature extractor"):
        engine.create_model("ccnet", 3, backbone="test_vit")


@pytest.mark.parametrize("num_classes", [0, -2, 2.5, True, "3"])
def test_num_classes_must_be_a_positive_integer(num_classes):
    with pytest.raises(ValueError, match="num_classes must be an integer >= 1"):
        engine.create_model("encnet", num_classes, backbone="test_resnet")


def test_unknown_option_lists_the_accepted_ones():
    with pytest.raises(ValueError, match="does not accept option.*widht.*accepted options:.*channels="):
        engine.create_model("deeplabv3plus", 3, backbone="test_resnet", widht=3)


def test_output_stride_must_be_8_or_16():
    with pytest.raises(ValueError, match="output_stride must be 8 or 16"):
        engine.create_model("deeplabv3plus", 3, backbone="test_resnet", output_stride=32)


@pytest.mark.parametrize(
    "x, problem",
    [
        (torch.randn(3, 32, 32), r"shape \[3, 32, 32\]"),
        (torch.randn(1, 1, 32, 32), r"shape \[1, 1, 32, 32\]"),
        (torch.randn(1, 4, 32, 32), r"shape \[1, 4, 32, 32\]"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "dtype torch.uint8"),
        ([[1.0]], "got list"),
    ],
)
@pytest.mark.parametrize("name", engine.list_architectures())
def test_inputs_that_are_not_rgb_batches_are_refused(name, x, problem):
    model = tiny_model(name).eval()
    with pytest.raises(ValueError, match=r"expected a float tensor \[B, 3, H, W\].*" + problem):
        model(x)
    with pytest.raises(ValueError, match=problem):
        model.forward_train(x)


def test_missing_local_weights_file_is_named(tmp_path):
    path = tmp_path / "nothing.safetensors"
    with pytest.raises(ValueError, match="nothing.safetensors: no such file"):
        engine.create_model("ccnet", 3, backbone="test_resnet", pretrained=str(path))
