"""engine.explain: which maps each architecture gives, that they are what they claim, and that the model is
left exactly as it was."""

import pytest
import torch
import torch.nn.functional as F

import engine
from engine.explanations import token_attention
from tests.engine.tiny import tiny_model

ARCHS = engine.list_architectures()
SIZE = (50, 70)  # not a multiple of the patch size: the point's patch lies in the padded frame
POINT = (37, 21)


def expected_keys(name: str) -> set[str]:
    keys = {"cam"}
    if name.startswith(("setr", "segmenter")):
        keys |= {f"attention/layer{i}" for i in range(6)}  # test_vit has 6 blocks
    if name == "segmenter_mask":
        keys |= {"attention/decoder0", "attention/decoder1"}
    if name == "ccnet":
        keys |= {"attention/pass1", "attention/pass2"}
    if name == "encnet":
        keys |= {f"codeword{k}" for k in range(4)}
    return keys


def wake(model: torch.nn.Module) -> torch.nn.Module:
    """Zero-initialised scales (CCNet's gamma) to a value at which every path counts."""
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.fill_(0.5)
    return model


def hooks_of(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


@pytest.mark.parametrize("name", ARCHS)
def test_explain_gives_its_maps_and_leaves_the_model_as_it_was(name):
    torch.manual_seed(0)
    model = wake(tiny_model(name, num_classes=4))
    x = torch.randn(1, 3, *SIZE)
    model.eval()
    with torch.no_grad():
        before = model(x)
    # A state explain must restore: training mode with one frozen, evaluating part.
    model.train()
    frozen = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d | torch.nn.LayerNorm))
    frozen.eval()
    frozen.weight.requires_grad_(False)
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    fused = [m.fused_attn for m in model.modules() if hasattr(m, "fused_attn")]
    buffers = {k: v.clone() for k, v in model.state_dict().items()}

    maps = engine.explain(model, x, POINT)

    assert set(maps) == expected_keys(name)
    for key, m in maps.items():
        assert m.shape == SIZE and m.dtype == torch.float32 and m.device.type == "cpu", key
        assert torch.isfinite(m).all() and (m >= 0).all(), key
    assert maps["cam"].max() <= 1
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert [m.fused_attn for m in model.modules() if hasattr(m, "fused_attn")] == fused
    assert all(p.grad is None for p in model.parameters())
    assert hooks_of(model) == 0
    for k, v in model.state_dict().items():  # BatchNorm statistics untouched: explain ran in eval mode
        torch.testing.assert_close(v, buffers[k], rtol=0, atol=0, msg=k)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["segmenter_linear", "setr_mla", "segmenter_mask"])
def test_layer_attention_equals_timms_own_attention_weights(name):
    torch.manual_seed(1)
    model = tiny_model(name).eval()
    x = torch.randn(1, 3, *SIZE)
    rows = token_attention(model, x, POINT)
    maps = engine.explain(model, x, POINT)
    # Independently: timm's unfused path materialises the weights; read them where dropout is applied.
    enc = model.backbone
    sites = {f"attention/layer{i}": b.attn for i, b in enumerate(enc.blocks)}
    if name == "segmenter_mask":
        sites |= {f"attention/decoder{j}": layer.attn for j, layer in enumerate(model.decode_head.layers)}
    weights = {}
    for key, attn in sites.items():
        attn.fused_attn = False
        attn.attn_drop.register_forward_hook(lambda m, args, out, key=key: weights.__setitem__(key, out[0]))
    with torch.no_grad():
        model(x)
    grid = (64 // 16, 80 // 16)  # the padded input's patches
    patch = (POINT[0] // 16) * grid[1] + POINT[1] // 16
    for key, w in weights.items():
        prefix = enc.prefix_tokens if key.startswith("attention/layer") else 0
        want = w[:, prefix + patch].mean(dim=0)  # [tokens], averaged over heads
        torch.testing.assert_close(rows[key], want, rtol=1e-5, atol=1e-6, msg=key)
        torch.testing.assert_close(rows[key].sum(), torch.tensor(1.0), msg=key)
        # In the image every patch is a block of its weight.
        on_grid = want[prefix : prefix + grid[0] * grid[1]].reshape(grid)
        block = on_grid.repeat_interleave(16, 0).repeat_interleave(16, 1)[: SIZE[0], : SIZE[1]]
        torch.testing.assert_close(maps[key], block, rtol=1e-5, atol=1e-6, msg=key)


def test_attention_rows_of_an_encoder_with_a_class_token_sum_to_one_with_it():
    torch.manual_seed(2)
    model = tiny_model("setr_naive").eval()
    rows = token_attention(model, torch.randn(1, 3, 48, 48), (5, 40))
    assert len(rows) == 6
    for key, row in rows.items():
        assert row.shape == (1 + 9,), key  # the class token and 3x3 patches
        torch.testing.assert_close(row.sum(), torch.tensor(1.0), msg=key)
        assert row[0] > 0, "the class token is attended to, and left out of the maps"


def dense_criss_cross(w_col: torch.Tensor, w_row: torch.Tensor) -> torch.Tensor:
    """The pass as an [N, N] matrix: A[u, v] is the weight pixel u gives pixel v."""
    h, w = w_col.shape[:2]
    a = torch.zeros(h, w, h, w)
    for i in range(h):
        for j in range(w):
            a[i, j, :, j] += w_col[i, j]
            a[i, j, i, :] += w_row[i, j]
    return a.reshape(h * w, h * w)


def test_criss_cross_passes_are_the_row_and_column_then_everything():
    torch.manual_seed(3)
    model = wake(tiny_model("ccnet")).eval()
    x = torch.randn(1, 3, 61, 75)
    point = (30, 47)
    maps = engine.explain(model, x, point)
    head = model.decode_head
    with torch.no_grad():
        inputs = head.attend(model.backbone(x)[-1])  # the input of each criss-cross pass
        a1, a2 = (dense_criss_cross(*(w[0] for w in head.cca.weights(z))) for z in inputs)
    fh, fw = inputs[0].shape[-2:]
    u = (point[0] * fh // 61) * fw + point[1] * fw // 75
    for key, row in [("attention/pass1", a1[u]), ("attention/pass2", a2[u] @ a1)]:
        torch.testing.assert_close(row.sum(), torch.tensor(1.0))
        want = F.interpolate(row.reshape(1, 1, fh, fw), size=(61, 75), mode="nearest")[0, 0]
        torch.testing.assert_close(maps[key], want, rtol=1e-5, atol=1e-6, msg=key)
    # Pass 1 lies on the point's row and column; pass 2 reaches every pixel.
    rows_of = torch.arange(61) * fh // 61
    cols_of = torch.arange(75) * fw // 75
    cross = (rows_of[:, None] == rows_of[point[0]]) | (cols_of[None, :] == cols_of[point[1]])
    assert (maps["attention/pass1"][~cross] == 0).all() and (maps["attention/pass1"][cross] > 0).all()
    assert (maps["attention/pass2"] > 0).all()


def test_codeword_assignments_sum_to_one_everywhere():
    torch.manual_seed(4)
    maps = engine.explain(tiny_model("encnet").eval(), torch.randn(1, 3, 40, 52), (0, 51))
    total = sum(maps[f"codeword{k}"] for k in range(4))
    torch.testing.assert_close(total, torch.ones(40, 52))


def test_cam_of_a_linear_classifier_is_the_class_weights_applied_to_the_features():
    # With a 1x1 classifier Grad-CAM reduces to CAM: relu(w_k . features), scaled to a maximum of 1.
    torch.manual_seed(5)
    model = tiny_model("segmenter_linear", num_classes=5).eval()
    x = torch.randn(1, 3, *SIZE)
    maps = engine.explain(model, x, POINT)
    with torch.no_grad():
        k = model(x)[0, :, POINT[0], POINT[1]].argmax()
        (feat,) = model.backbone(F.pad(x, (0, 10, 0, 14)))
        cam = torch.einsum("c,bchw->bhw", model.decode_head.conv_seg.weight[k, :, 0, 0], feat).relu()
        cam = F.interpolate(cam[None], size=(64, 80), mode="bilinear", align_corners=False)[0, 0, :50, :70]
    torch.testing.assert_close(maps["cam"], cam / cam.max(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("point", [(50, 0), (0, 70), (-1, 3), (3, -1)])
def test_a_point_outside_the_image_is_refused(point):
    model = tiny_model("segmenter_linear").eval()
    with pytest.raises(ValueError, match=rf"point \(row, col\) = \({point[0]}, {point[1]}\).*50x70"):
        engine.explain(model, torch.randn(1, 3, *SIZE), point)


@pytest.mark.parametrize(
    "x, point, problem",
    [
        (torch.randn(2, 3, 20, 20), (1, 1), r"single image \[1, 3, H, W\].*\[2, 3, 20, 20\]"),
        (torch.zeros(1, 3, 20, 20, dtype=torch.uint8), (1, 1), "dtype torch.uint8"),
        (torch.randn(1, 3, 20, 20), (1.5, 2), r"point must be \(row, col\) integers"),
        (torch.randn(1, 3, 20, 20), (1,), r"point must be \(row, col\) integers"),
    ],
)
def test_bad_input_is_refused(x, point, problem):
    with pytest.raises(ValueError, match=problem):
        engine.explain(tiny_model("ccnet").eval(), x, point)
