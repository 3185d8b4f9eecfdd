"""LC-MAE (Sec. 3.3): two independent views, Table 1 weights, losses, gradient paths, batched views, projector."""

import pytest
import torch

from lcmae_core.losses import cross_view_loss, in_view_loss, mae_loss
from lcmae_core.masking import masking_from_noise, two_view_noise
from lcmae_core.models import TABLE1_SETTINGS, MaskedAutoencoderViT, create_model, setting_weights

N, L = 3, 16


def _model(decoder="transformer", **kw):
    torch.manual_seed(0)
    return create_model("lcmae", "test", decoder=decoder, proj_dim=24, **kw)


def _imgs():
    return torch.randn(N, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_views_use_independent_masks():
    model = _model()
    torch.manual_seed(5)
    out = model.compute_losses(_imgs(), 0.75)
    m1, m2 = out["mask"].chunk(2)
    assert m1.shape == m2.shape == (N, L)
    assert (m1 != m2).any(1).all()  # every image gets two different masks
    assert torch.equal(m1.sum(1), torch.full((N,), 12.0)) and torch.equal(m2.sum(1), torch.full((N,), 12.0))
    # with given noise, each view's mask is the one its own noise gives
    noise = two_view_noise(N, L, generator=torch.Generator().manual_seed(2))
    mask = model.compute_losses(_imgs(), 0.75, noise)["mask"]
    assert torch.equal(mask[:N], masking_from_noise(noise[0], 0.75).mask)
    assert torch.equal(mask[N:], masking_from_noise(noise[1], 0.75).mask)


def test_table1_settings():
    expected = {"a": (1, 1, 1), "b": (1, 0, 0), "c": (0, 1, 0), "d": (0, 0, 1), "e": (1, 1, 0), "f": (1, 0, 1),
                "g": (0, 1, 1)}  # (L_MAE, L_cross, L_in), Table 1
    assert set(TABLE1_SETTINGS) == set(expected)
    for s, w in expected.items():
        assert setting_weights(s) == tuple(float(x) for x in w)
        assert setting_weights(s.upper()) == tuple(float(x) for x in w)
        m = create_model("lcmae", "test", setting=s)
        assert (m.w_mae, m.w_cross, m.w_in) == tuple(float(x) for x in w)
    m = create_model("lcmae", "test")
    assert (m.w_mae, m.w_cross, m.w_in) == (1.0, 1.0, 1.0)  # default: the full LC-MAE, setting (a)
    with pytest.raises(ValueError, match="unknown Table 1 setting"):
        setting_weights("h")
    with pytest.raises(ValueError, match="not both"):
        create_model("lcmae", "test", setting="a", weights=(1, 1, 1))
    with pytest.raises(ValueError, match="not all zero"):
        create_model("lcmae", "test", weights=(0, 0, 0))


@pytest.mark.parametrize("setting", list("abcdefg") + [(0.5, 2.0, 3.0)])
def test_loss_is_weighted_sum_of_parts(setting):
    kw = {"weights": setting} if isinstance(setting, tuple) else {"setting": setting}
    model = _model(**kw)
    imgs = _imgs()
    noise = two_view_noise(N, L, generator=torch.Generator().manual_seed(3))
    out = model.compute_losses(imgs, 0.75, noise)
    w = setting if isinstance(setting, tuple) else TABLE1_SETTINGS[setting]
    total = w[0] * out["loss_mae"] + w[1] * out["loss_cross"] + w[2] * out["loss_in"]
    assert out["loss"].item() == pytest.approx(total.item(), rel=1e-6)
    # every part is reported and nonzero at a random initialisation, whatever its weight
    for k in ("loss_mae", "loss_cross", "loss_in"):
        assert out[k].item() > 0 and not out[k].requires_grad
    # and each part is the loss function applied to the outputs
    pred, v, mask = out["pred"], out["v"], out["mask"]
    t2 = torch.cat([model.targets(imgs)] * 2)
    assert out["loss_mae"].item() == pytest.approx(mae_loss(pred, t2, mask).item(), rel=1e-6)
    v1, v2 = v.chunk(2)
    m1, m2 = mask.chunk(2)
    assert out["loss_cross"].item() == pytest.approx(cross_view_loss(v1, v2, m1, m2).item(), rel=1e-6)
    # L_in (default reading): the cosine matrix of the input image's own patches, not the norm-pix targets
    x2 = torch.cat([model.patchify(imgs)] * 2)
    assert out["loss_in"].item() == pytest.approx(in_view_loss(v, x2, mask).item(), rel=1e-6)
    if model.norm_pix_loss:
        assert out["loss_in"].item() != pytest.approx(in_view_loss(v, t2, mask).item(), rel=1e-3)
    # forward returns the same loss
    loss, pred_f, mask_f = model(imgs, 0.75, noise)
    assert loss.item() == pytest.approx(out["loss"].item(), rel=1e-6)
    assert pred_f.shape == (2 * N, L, 192) and torch.equal(mask_f, mask)


def _grads(setting):
    model = _model(setting=setting)
    out = model.compute_losses(_imgs(), 0.75, two_view_noise(N, L, generator=torch.Generator().manual_seed(4)))
    out["loss"].backward()
    return model


def _has_grad(p):
    return p.grad is not None and p.grad.abs().sum().item() > 0


def test_zero_weight_has_no_gradient_path():
    c = _grads("c")  # L_cross only: the pixel head is unused
    assert not _has_grad(c.decoder_pred.weight) and not _has_grad(c.decoder_pred.bias)
    assert _has_grad(c.projector.weight) and _has_grad(c.blocks[0].attn.qkv.weight)
    b = _grads("b")  # L_MAE only: the projector is unused
    assert not _has_grad(b.projector.weight) and not _has_grad(b.projector.bias)
    assert _has_grad(b.decoder_pred.weight) and _has_grad(b.blocks[0].attn.qkv.weight)
    d = _grads("d")  # L_in only
    assert not _has_grad(d.decoder_pred.weight) and _has_grad(d.projector.weight)
    a = _grads("a")
    assert _has_grad(a.decoder_pred.weight) and _has_grad(a.projector.weight)


def test_nonzero_weight_adds_its_gradient():
    # (e) = (b) + L_cross: the pixel head gets the same gradient (L_cross does not reach it), the encoder not
    e, b = _grads("e"), _grads("b")
    torch.testing.assert_close(e.decoder_pred.weight.grad, b.decoder_pred.weight.grad)
    assert not torch.allclose(e.blocks[0].attn.qkv.weight.grad, b.blocks[0].attn.qkv.weight.grad)


@pytest.mark.parametrize("decoder", ["transformer", "gaussian", "conv"])
def test_batched_views_equal_separate_passes(decoder):
    model = _model(decoder).eval()
    imgs = _imgs()
    noise = two_view_noise(N, L, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        pred, v, mask, hidden = model.forward_views(imgs, 0.75, noise)
        for k in range(2):
            latent, mk, ids = model.forward_encoder(imgs, 0.75, noise[k])
            pk = model.forward_decoder(latent, ids)
            hk = model.forward_decoder_hidden(latent, ids)
            rows = slice(k * N, (k + 1) * N)
            torch.testing.assert_close(pred[rows], pk, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(v[rows], model.projector(hk), rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(hidden[rows], hk, rtol=1e-5, atol=1e-5)
            assert torch.equal(mask[rows], mk)
            # and as the plain MAE would compute it
            base = MaskedAutoencoderViT.compute_losses(model, imgs, 0.75, noise[k])
            torch.testing.assert_close(pred[rows], base["pred"], rtol=1e-5, atol=1e-5)
            assert torch.equal(base["mask"], mk)


@pytest.mark.parametrize("decoder", ["transformer", "gaussian"])
def test_projector_reads_decoder_norm_output(decoder):
    model = _model(decoder).eval()
    seen = {}
    model.decoder_norm.register_forward_hook(lambda m, i, o: seen.__setitem__("norm", o))
    model.projector.register_forward_hook(lambda m, i, o: seen.__setitem__("proj_in", i[0]))
    model.decoder_pred.register_forward_hook(lambda m, i, o: seen.__setitem__("pred_in", i[0]))
    with torch.no_grad():
        out = model.compute_losses(_imgs(), 0.75)
    hidden = seen["norm"]
    if decoder == "transformer":
        hidden = hidden[:, 1:]  # the CLS token is dropped
    assert hidden.shape == (2 * N, L, 32)
    assert torch.equal(seen["proj_in"], hidden)
    assert torch.equal(seen["pred_in"], hidden)
    torch.testing.assert_close(out["v"], model.projector(hidden))
    # the decoder's hidden states are layer-normed: zero mean per token (LayerNorm bias is 0 at init)
    assert torch.allclose(hidden.mean(-1), torch.zeros(2 * N, L), atol=1e-5)


def test_in_view_target_readings():
    """in_view_target="target" matches the reconstruction targets' cosine matrix; "input" the input patches'.
    The two differ where per-patch normalisation changes the geometry: a flat patch is the zero vector after
    norm-pix (cosine 0 with every patch) but keeps its direction in the input."""
    imgs = _imgs()
    imgs[:, :, :16] = 0.5  # a flat top half: its patches are zero vectors after norm-pix
    noise = two_view_noise(N, L, generator=torch.Generator().manual_seed(5))
    outs = {}
    for reading in ("input", "target"):
        torch.manual_seed(0)
        model = _model(setting="a", in_view_target=reading, norm_pix_loss=True)
        out = model.compute_losses(imgs, 0.75, noise)
        patches = model.patchify(imgs) if reading == "input" else model.targets(imgs)
        assert out["loss_in"].item() == pytest.approx(in_view_loss(out["v"], torch.cat([patches] * 2),
                                                                   out["mask"]).item(), rel=1e-6)
        outs[reading] = out
    # same weights, same masks: only L_in differs
    torch.testing.assert_close(outs["input"]["loss_mae"], outs["target"]["loss_mae"])
    assert abs(outs["input"]["loss_in"].item() - outs["target"]["loss_in"].item()) > 0.05
    with pytest.raises(ValueError, match="unknown in_view_target 'pixels'"):
        _model(in_view_target="pixels")
