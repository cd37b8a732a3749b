"""Criss-cross attention against a dense reference written from the paper's definition."""

import pytest
import torch

from engine.models.ccnet import CrissCrossAttention, criss_cross_aggregate, criss_cross_weights


def dense_reference(q, k, v):
    """For each pixel: attention over exactly its row and column (itself once), one softmax."""
    b, _, h, w = q.shape
    out = torch.zeros_like(v)
    for n in range(b):
        for i in range(h):
            for j in range(w):
                cross = [(g, j) for g in range(h)] + [(i, c) for c in range(w) if c != j]
                keys = torch.stack([k[n, :, g, c] for g, c in cross])
                values = torch.stack([v[n, :, g, c] for g, c in cross])
                attn = torch.softmax(keys @ q[n, :, i, j], dim=0)
                out[n, :, i, j] = attn @ values
    return out


@pytest.mark.parametrize("grad", [False, True])
def test_criss_cross_equals_dense_reference(grad):
    torch.manual_seed(0)
    q, k = torch.randn(2, 4, 5, 7), torch.randn(2, 4, 5, 7)
    v = torch.randn(2, 6, 5, 7)
    with torch.set_grad_enabled(grad):
        got = criss_cross_aggregate(v, *criss_cross_weights(q, k))
    torch.testing.assert_close(got, dense_reference(q, k, v), rtol=1e-5, atol=1e-5)


def test_weights_over_row_and_column_sum_to_one():
    w_col, w_row = criss_cross_weights(torch.randn(1, 3, 6, 4), torch.randn(1, 3, 6, 4))
    assert w_col.shape == (1, 6, 4, 6) and w_row.shape == (1, 6, 4, 4)
    torch.testing.assert_close(w_col.sum(-1) + w_row.sum(-1), torch.ones(1, 6, 4))
    # the pixel itself is counted once, in its row: its column entry carries no weight
    assert w_col[0, 2, 1, 2] == 0 and w_row[0, 2, 1, 1] > 0


def test_gradients_equal_the_dense_reference():
    torch.manual_seed(1)
    leaves = [torch.randn(1, 3, 4, 5, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    v = torch.randn(1, 5, 4, 5, dtype=torch.float64, requires_grad=True)
    got = criss_cross_aggregate(v, *criss_cross_weights(*leaves))
    grads = torch.autograd.grad(got.sin().sum(), [*leaves, v])
    want = torch.autograd.grad(dense_reference(*leaves, v).sin().sum(), [*leaves, v])
    for g, r in zip(grads, want, strict=True):
        torch.testing.assert_close(g, r)


def test_module_adds_gamma_scaled_attention_to_its_input():
    torch.manual_seed(2)
    cca = CrissCrossAttention(16).eval()
    with torch.no_grad():
        cca.gamma.fill_(0.7)
        x = torch.randn(2, 16, 9, 11)
        want = x + 0.7 * dense_reference(cca.query_conv(x), cca.key_conv(x), cca.value_conv(x))
        torch.testing.assert_close(cca(x), want, rtol=1e-5, atol=1e-5)
    with torch.enable_grad():
        torch.testing.assert_close(cca(x), want, rtol=1e-5, atol=1e-5)


def test_bf16_autocast_stays_close_to_fp32():
    torch.manual_seed(3)
    cca = CrissCrossAttention(32).eval()
    with torch.no_grad():
        cca.gamma.fill_(1.0)
        x = torch.randn(1, 32, 13, 17)
        ref = cca(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = cca(x)
    assert torch.isfinite(low).all()
    assert (low.float() - ref).abs().max() / ref.abs().max() < 0.05
