"""The predictor: outputs for every architecture, tiles, test-time augmentation, inputs, devices, threads."""

import math
import pickle
import threading

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import engine
from engine.fusion import fold_batch_norms
from engine.precision import cpu_supports_bf16
from engine.tiling import tile_grid
from tests.engine.pointwise import PointwiseModel
from tests.engine.tiny import tiny_model

RNG = np.random.default_rng(0)


def random_image(h: int, w: int) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def normalised(image: np.ndarray, model: engine.SegModel) -> torch.Tensor:
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in model.normalization)
    return (torch.from_numpy(image).permute(2, 0, 1)[None].float() - mean) / std


@pytest.mark.parametrize("name", engine.list_architectures())
def test_outputs_match_the_model_for_every_architecture(name):
    torch.manual_seed(0)
    model = tiny_model(name, num_classes=5).eval()
    image = random_image(61, 83)
    prediction = engine.Predictor(model, precision="fp32").predict(image)
    with torch.no_grad():
        probs = torch.softmax(model(normalised(image, model)), dim=1)[0]
    assert prediction.labels.shape == (61, 83) and prediction.labels.dtype == np.uint8
    assert prediction.confidence.dtype == prediction.entropy.dtype == np.float32
    assert (prediction.labels == probs.argmax(0).numpy()).mean() > 0.999
    np.testing.assert_allclose(prediction.confidence, probs.max(0).values.numpy(), atol=1e-5)
    entropy = -(probs * probs.log()).sum(0).numpy()
    np.testing.assert_allclose(prediction.entropy, entropy, atol=1e-4)
    assert prediction.entropy.max() <= math.log(5) + 1e-5 and prediction.probs is None
    assert (prediction.device, prediction.precision, prediction.backend) == ("cpu", "fp32", "torch")
    assert prediction.tiles == 1 and prediction.seconds > 0


def test_bf16_on_this_cpu_is_used_and_said_and_close_to_fp32():
    if not cpu_supports_bf16():
        pytest.skip("this CPU has no native bf16 (AMX or AVX512-BF16): 'auto' means fp32 here, see the policy test")
    torch.manual_seed(0)
    model = tiny_model("deeplabv3plus", num_classes=4).eval()
    image = random_image(50, 70)
    auto = engine.Predictor(model).predict(image, return_probs=True)
    fp32 = engine.Predictor(model, precision="fp32").predict(image, return_probs=True)
    assert auto.precision == "bf16"
    # bf16 really ran: the probabilities differ from fp32's (bf16 keeps 8 bits of mantissa) but stay close
    difference = np.abs(auto.probs - fp32.probs).max()
    assert 1e-4 < difference < 0.05
    assert (auto.labels == fp32.labels).mean() > 0.95


def test_precision_policy_on_cpus_with_and_without_native_bf16(monkeypatch):
    from engine import precision

    cpu = torch.device("cpu")
    for native, auto in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(precision, "cpu_supports_bf16", lambda native=native: native)
        assert precision.resolve_precision("auto", cpu) == auto
        assert precision.resolve_precision("bf16", cpu) == "bf16"  # asked for: emulated where not native
        assert precision.resolve_precision("fp32", cpu) == "fp32"
        with pytest.raises(ValueError, match="precision 'fp16' is for GPUs; on a CPU use bf16 or fp32"):
            precision.resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="precision 'fp16' is for GPUs"):
        engine.Predictor(PointwiseModel(), device="cpu", precision="fp16")
    from training.distributed import start_runtime

    with pytest.raises(ValueError, match="precision 'fp16' is for GPUs"):  # training: the same policy
        start_runtime("cpu", "fp16")
    assert start_runtime("cpu", "fp32").autocast_dtype is None


def test_tiled_prediction_with_a_real_architecture():
    torch.manual_seed(0)
    model = tiny_model("deeplabv3plus", num_classes=3)
    predictor = engine.Predictor(model, precision="fp32", tile=96, batch_size=4)
    prediction = predictor.predict(random_image(150, 230), return_probs=True)
    assert prediction.labels.shape == (150, 230) and prediction.tiles == len(tile_grid(150, 230, 96, 96, 1 / 3)) == 8
    assert prediction.probs.shape == (3, 150, 230)
    np.testing.assert_allclose(prediction.probs.sum(0), 1, atol=1e-5)
    np.testing.assert_array_equal(prediction.labels, prediction.probs.argmax(0))
    np.testing.assert_allclose(prediction.confidence, prediction.probs.max(0), atol=1e-6)


def test_tta_averages_softmax_over_flips_and_scales():
    model = PointwiseModel(num_classes=4)  # interpolation still makes every scale differ
    image = random_image(48, 64)
    scales = (0.75, 1.0, 1.5)
    got = engine.Predictor(model, precision="fp32", tta=True, tta_scales=scales).predict(image, return_probs=True)
    x = normalised(image, model)
    want = 0
    with torch.no_grad():
        for s in scales:
            xs = F.interpolate(x, size=(round(48 * s), round(64 * s)), mode="bilinear", align_corners=False)
            for flip in (False, True):
                logits = model(xs.flip(-1) if flip else xs)
                logits = logits.flip(-1) if flip else logits
                want = want + torch.softmax(F.interpolate(logits, size=(48, 64), mode="bilinear",
                                                          align_corners=False), dim=1)
    np.testing.assert_allclose(got.probs, (want / 6)[0].numpy(), atol=1e-5)
    plain = engine.Predictor(model, precision="fp32").predict(image, return_probs=True)
    assert not np.allclose(got.probs, plain.probs, atol=1e-3)


def test_tta_with_the_default_scales_runs():
    model = tiny_model("encnet", num_classes=3)
    predictor = engine.Predictor(model, tta=True, precision="fp32")
    assert predictor.tta_scales == (0.5, 0.75, 1.0, 1.25, 1.5, 1.75) and predictor.tta_flip
    prediction = predictor.predict(random_image(32, 40))
    assert prediction.labels.shape == (32, 40) and prediction.tiles == 1


def _write(kind: str, path, rgb: np.ndarray):
    if kind == "16-bit":
        cv2.imwrite(str(path), cv2.cvtColor(rgb.astype(np.uint16) * 257, cv2.COLOR_RGB2BGR))
    elif kind == "grey":
        Image.fromarray(rgb[..., 0]).save(path)
    elif kind == "rgba":
        Image.fromarray(np.dstack([rgb, rgb[..., :1]]), mode="RGBA").save(path)
    elif kind == "exif-rotated":
        im = Image.fromarray(rgb)
        exif = im.getexif()
        exif[0x0112] = 6  # stored sideways: upright is the stored image turned clockwise
        im.save(path, exif=exif.tobytes())


@pytest.mark.parametrize("kind,upright", [
    ("16-bit", lambda rgb: rgb),
    ("grey", lambda rgb: np.repeat(rgb[..., :1], 3, axis=2)),
    ("rgba", lambda rgb: rgb),
    ("exif-rotated", lambda rgb: np.rot90(rgb, k=-1)),
])
def test_image_files_of_every_kind_are_predicted_upright(tmp_path, kind, upright):
    rgb = random_image(30, 47)
    path = tmp_path / ("Bild – ß 画像.tif" if kind == "16-bit" else "im.png")
    _write(kind, path, rgb)
    predictor = engine.Predictor(PointwiseModel(), precision="fp32")
    from_file = predictor.predict(path)
    from_array = predictor.predict(np.ascontiguousarray(upright(rgb)))
    assert from_file.labels.shape == from_array.labels.shape
    np.testing.assert_array_equal(from_file.labels, from_array.labels)


def test_arrays_grey_and_rgba_are_accepted_and_wrong_ones_refused():
    predictor = engine.Predictor(PointwiseModel(), precision="fp32")
    rgb = random_image(20, 30)
    want = predictor.predict(rgb).labels
    np.testing.assert_array_equal(predictor.predict(np.dstack([rgb, rgb[..., :1]])).labels, want)
    assert predictor.predict(rgb[..., 0]).labels.shape == (20, 30)
    with pytest.raises(ValueError, match="uint8"):
        predictor.predict(rgb.astype(np.float32))
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        predictor.predict(np.zeros((5, 5, 2), np.uint8))


def test_unreadable_image_raises_naming_the_file(tmp_path):
    path = tmp_path / "kaputt.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(engine.ImageReadError, match="kaputt.png"):
        engine.Predictor(PointwiseModel()).predict(path)


def test_model_file_gives_classes_colours_and_normalisation(tmp_path):
    model = PointwiseModel(num_classes=3)
    model.config = {"name": "x"}  # not buildable: load through a LoadedModel instead of the registry
    loaded = engine.LoadedModel(model, engine.as_classes(["sky", "road", {"name": "car", "color": [1, 2, 3]}]),
                                {"normalization": {"mean": [1.0, 2.0, 3.0], "std": [4.0, 5.0, 6.0]}})
    predictor = engine.Predictor(loaded)
    assert [c.name for c in predictor.classes] == ["sky", "road", "car"] and predictor.num_classes == 3
    assert predictor.normalization == ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert predictor.model is model and predictor.backend == "torch"
    raw = engine.Predictor(PointwiseModel(num_classes=2))
    assert [c.name for c in raw.classes] == ["class0", "class1"]

    path = engine.save_model(tmp_path / "m.safetensors", tiny_model("ccnet", 3), classes=["a", "b", "c"])
    from_file = engine.Predictor(path, precision="fp32")
    assert [c.name for c in from_file.classes] == ["a", "b", "c"]
    assert from_file.predict(random_image(40, 40)).labels.max() < 3


def test_more_than_255_classes_give_uint16_labels():
    prediction = engine.Predictor(PointwiseModel(num_classes=300), precision="fp32").predict(random_image(16, 16))
    assert prediction.labels.dtype == np.uint16 and prediction.labels.max() < 300


def test_predictions_from_worker_threads_equal_the_sequential_one():
    predictor = engine.Predictor(PointwiseModel(), precision="fp32", tile=32)
    image = random_image(90, 70)
    want = predictor.predict(image).labels
    results = [None] * 3

    def work(i):
        results[i] = predictor.predict(image).labels

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results:
        np.testing.assert_array_equal(got, want)


def test_bad_settings_are_refused(tmp_path):
    model = PointwiseModel()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no usable CUDA"):
            engine.Predictor(model, device="cuda")
    with pytest.raises(ValueError, match="unknown device"):
        engine.Predictor(model, device="tpu")
    with pytest.raises(ValueError, match="precision"):
        engine.Predictor(model, precision="int4")
    with pytest.raises(ValueError, match="overlap"):
        engine.Predictor(model, overlap=1.0)
    with pytest.raises(ValueError, match="tile"):
        engine.Predictor(model, tile=8)
    with pytest.raises(ValueError, match="backend"):
        engine.Predictor(model, backend="tensorrt")
    with pytest.raises(ValueError, match="m.onnx: an ONNX file runs with backend='onnx'"):
        engine.Predictor(tmp_path / "m.onnx", backend="torch")


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_pickle_given_as_model_is_refused_and_runs_nothing(tmp_path):
    victim = tmp_path / "created-by-pickle.txt"
    path = tmp_path / "model.pth"
    path.write_bytes(pickle.dumps({"state_dict": {"w": _Payload(str(victim))}}))
    with pytest.raises(engine.ModelFileError, match="model.pth: .*refused"):
        engine.Predictor(path)
    assert not victim.exists()


@pytest.mark.parametrize("name", ["deeplabv3plus", "encnet", "ccnet", "setr_pup"])
def test_folded_batch_norms_give_the_same_logits_and_leave_the_model_alone(name):
    torch.manual_seed(0)
    model = tiny_model(name, num_classes=4).eval()
    with torch.no_grad():  # statistics that are not the identity, so folding has something to do
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(1, 3, 72, 88)
    with torch.no_grad():
        want = model(x)
        fused = fold_batch_norms(model, torch.randn(1, 3, 64, 64))
        assert fused is not None
        torch.testing.assert_close(fused(x), want, atol=1e-4, rtol=1e-4)
    count = lambda m: sum(type(b) is torch.nn.BatchNorm2d for b in m.modules())
    assert count(fused) < count(model)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()), "the model is unchanged"
    predictor = engine.Predictor(model, precision="fp32")
    assert predictor.fused and predictor.model is model


class _ConvFeedsTwo(torch.nn.Module):
    """A convolution whose output feeds a norm and, past it, the sum: folding would change the sum."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1)
        self.bn = torch.nn.BatchNorm2d(3).eval()
        with torch.no_grad():
            self.bn.running_var.fill_(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


def test_folding_that_would_change_the_output_is_refused():
    assert fold_batch_norms(_ConvFeedsTwo().eval(), torch.randn(1, 3, 8, 8)) is None
