"""The local decoders see exactly the 5 x 5 token window around each position (Table 2), and the Gaussian
kernel is a normalised 5 x 5, sigma = 1 Gaussian that stays a weighted average at the border."""

import math

import pytest
import torch

from lcmae_core.models import create_model
from lcmae_core.models.decoders import GaussianAverage, gaussian_kernel_2d

G = 8  # 64 / 8: an 8 x 8 grid
LOCAL = ["gaussian", "conv"]


def _model(decoder):
    torch.manual_seed(0)
    return create_model("mae", "test", img_size=64, patch_size=8, decoder=decoder).double().eval()


def _tokens(model, seed=0):
    imgs = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    noise = torch.rand(2, G * G, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    latent, mask, ids_restore = model.forward_encoder(imgs, 0.75, noise)
    return model.decoder_tokens(latent, ids_restore).detach()  # (N, 1 + L, Dd)


def _pred_from_tokens(model, tokens):
    return model.decoder_pred(model.decoder_norm(model.decoder_local(tokens[:, 1:])))


def _window(j):
    r, c = divmod(j, G)
    return {rr * G + cc for rr in range(r - 2, r + 3) for cc in range(c - 2, c + 3) if 0 <= rr < G and 0 <= cc < G}


@pytest.mark.parametrize("decoder", LOCAL)
def test_pred_helper_is_the_model_decoder(decoder):
    model = _model(decoder)
    imgs = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    noise = torch.rand(2, G * G, dtype=torch.float64)
    latent, _, ids_restore = model.forward_encoder(imgs, 0.75, noise)
    tokens = model.decoder_tokens(latent, ids_restore)
    assert torch.allclose(_pred_from_tokens(model, tokens), model.forward_decoder(latent, ids_restore))


@pytest.mark.parametrize("decoder", LOCAL)
@pytest.mark.parametrize("j", [0, 7, 9, 27, 36, 63])  # corners, near-corner, interior
def test_receptive_field_gradient(decoder, j):
    model = _model(decoder)
    tokens = _tokens(model).requires_grad_(True)
    pred = _pred_from_tokens(model, tokens)
    # the gradient of one image's prediction at j, summed over its outputs with random weights
    w = torch.randn(pred.shape[-1], generator=torch.Generator().manual_seed(j), dtype=torch.float64)
    (pred[0, j] * w).sum().backward()
    gnorm = tokens.grad[0, 1:].norm(dim=-1)  # (L,)
    win = _window(j)
    outside = [k for k in range(G * G) if k not in win]
    assert len(win) <= 25 and len(outside) >= G * G - 25
    assert gnorm[outside].abs().max().item() == 0.0
    assert (gnorm[sorted(win)] > 0).all(), f"some in-window positions get no gradient: {gnorm[sorted(win)]}"
    assert tokens.grad[0, 0].abs().max().item() == 0.0  # the CLS token is not used
    assert tokens.grad[1].abs().max().item() == 0.0  # nor the other images


@pytest.mark.parametrize("decoder", LOCAL)
def test_interior_window_is_full_5x5(decoder):
    model = _model(decoder)
    tokens = _tokens(model).requires_grad_(True)
    pred = _pred_from_tokens(model, tokens)
    pred[0, 27].sum().backward()  # (3, 3): its whole 5 x 5 window lies inside the grid
    nz = (tokens.grad[0, 1:].norm(dim=-1) > 0).reshape(G, G)
    expected = torch.zeros(G, G, dtype=torch.bool)
    expected[1:6, 1:6] = True
    assert torch.equal(nz, expected)
    assert nz.sum().item() == 25


@pytest.mark.parametrize("decoder", LOCAL)
@pytest.mark.parametrize("j", [0, 27, 63])
def test_perturbing_outside_window_leaves_pred_unchanged(decoder, j):
    model = _model(decoder)
    tokens = _tokens(model)
    with torch.no_grad():
        base = _pred_from_tokens(model, tokens)
        win = _window(j)
        for k in range(G * G):
            t2 = tokens.clone()
            t2[0, 1 + k] += 10.0 * torch.randn(tokens.shape[-1], dtype=torch.float64)
            p2 = _pred_from_tokens(model, t2)
            changed = not torch.allclose(p2[0, j], base[0, j], rtol=0, atol=1e-12)
            assert changed == (k in win), f"position {k} (window of {j}: {k in win})"
            assert torch.equal(p2[1], base[1])


# ---------------------------------------------------------------------------------------------------------
def test_gaussian_kernel():
    k = gaussian_kernel_2d(5, 1.0)
    assert k.shape == (5, 5)
    assert k.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(k, k.T) and torch.allclose(k, k.flip(0)) and torch.allclose(k, k.flip(1))
    # sigma = 1: the ratio of neighbouring weights is exp(-1/2) along an axis, exp(-1) on the diagonal
    assert (k[2, 3] / k[2, 2]).item() == pytest.approx(math.exp(-0.5), rel=1e-5)
    assert (k[3, 3] / k[2, 2]).item() == pytest.approx(math.exp(-1.0), rel=1e-5)
    assert (k[2, 4] / k[2, 2]).item() == pytest.approx(math.exp(-2.0), rel=1e-5)
    assert k.argmax().item() == 12
    with pytest.raises(ValueError, match="odd"):
        gaussian_kernel_2d(4)


def test_model_gaussian_settings():
    model = _model("gaussian")
    avg = model.decoder_local.average
    assert avg.kernel_size == 5 and avg.sigma == 1.0 and avg.grid == (G, G)
    assert torch.allclose(avg.kernel[0, 0].float(), gaussian_kernel_2d(5, 1.0))


def test_gaussian_average_of_constant_is_constant_everywhere():
    avg = GaussianAverage((G, G), 5, 1.0)
    x = torch.full((2, G * G, 3), 2.5)
    x[1] = -7.0
    y = avg(x)
    assert torch.allclose(y, x, atol=1e-6)  # border included: the weights are renormalised
    # a plain zero-padded convolution would not be constant at the corner
    assert avg.mass[0, 0, 0, 0].item() < 0.6 and avg.mass[0, 0, 4, 4].item() == pytest.approx(1.0, abs=1e-6)


def test_gaussian_average_matches_loop():
    g = torch.Generator().manual_seed(0)
    avg = GaussianAverage((G, G), 5, 1.0).double()
    x = torch.randn(1, G * G, 2, generator=g, dtype=torch.float64)
    y = avg(x)
    k = gaussian_kernel_2d(5, 1.0).double()
    for j in [0, 5, 27, 63]:
        r, c = divmod(j, G)
        num = torch.zeros(2, dtype=torch.float64)
        den = 0.0
        for dr in range(-2, 3):
            for dc in range(-2, 3):
                rr, cc = r + dr, c + dc
                if 0 <= rr < G and 0 <= cc < G:
                    w = float(k[dr + 2, dc + 2])
                    num += w * x[0, rr * G + cc]
                    den += w
        assert torch.allclose(y[0, j], num / den, atol=1e-6)


def test_transformer_decoder_is_global():
    """The contrast: the official transformer decoder's prediction at a corner depends on far tokens."""
    model = _model("transformer")
    tokens = _tokens(model).requires_grad_(True)
    x = tokens
    for blk in model.decoder_blocks:
        x = blk(x)
    pred = model.decoder_pred(model.decoder_norm(x))[:, 1:]
    pred[0, 0].sum().backward()
    gnorm = tokens.grad[0, 1:].norm(dim=-1)
    assert (gnorm[[k for k in range(G * G) if k not in _window(0)]] > 0).all()
