"""The Encoding layer against the paper's formula, evaluated pixel by pixel and codeword by codeword."""

import math

import torch

from engine.models.encnet import Encoding


def encoding_by_loop(x, codewords, scale):
    b, c, h, w = x.shape
    k = codewords.shape[0]
    out = torch.zeros(b, k, c, dtype=x.dtype)
    for n in range(b):
        pixels = [x[n, :, i, j] for i in range(h) for j in range(w)]
        for xi in pixels:
            logits = torch.stack([scale[j] * ((xi - codewords[j]) ** 2).sum() for j in range(k)])
            weights = torch.exp(logits - logits.max())
            weights = weights / weights.sum()
            for j in range(k):
                out[n, j] += weights[j] * (xi - codewords[j])
    return out


def test_encoding_equals_the_formula_evaluated_directly():
    torch.manual_seed(0)
    layer = Encoding(channels=6, num_codes=4).double()
    x = torch.randn(2, 6, 3, 5, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), encoding_by_loop(x, layer.codewords, layer.scale))


def test_initialisation_follows_the_paper():
    layer = Encoding(channels=64, num_codes=32)
    bound = 1 / math.sqrt(32 * 64)
    assert layer.codewords.shape == (32, 64) and layer.codewords.abs().max() <= bound
    assert layer.scale.shape == (32,) and (layer.scale <= 0).all() and (layer.scale >= -1).all()


def test_assignments_are_a_distribution_over_codewords():
    layer = Encoding(channels=8, num_codes=5)
    a = layer.assignments(torch.randn(2, 30, 8))
    assert a.shape == (2, 30, 5)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 30))
